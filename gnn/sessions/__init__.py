"""gnn.sessions: the next song in a listening session: data, models, training, evaluation, pipeline."""

from gnn.sessions._base import NextSongPredictor, SessionModel
from gnn.sessions._baselines import SKNN, STAN, VSKNN, Markov, SessionPopularity
from gnn.sessions._data import Sessions, SessionSplit, build_sessions, session_split
from gnn.sessions._evaluate import evaluate_sessions
from gnn.sessions._hybrid import SessionHybrid
from gnn.sessions._mixture import SessionMixture
from gnn.sessions._pipeline import (
    SESSION_BASELINES,
    SESSION_MODELS,
    SessionComparison,
    SessionExperiment,
    compare_session_models,
    load_next_song_predictor,
    make_session_model,
    prepare_sessions,
    selection_summary,
)
from gnn.sessions._train import SessionGNN

__all__ = [
    "Markov",
    "NextSongPredictor",
    "SESSION_BASELINES",
    "SESSION_MODELS",
    "SKNN",
    "STAN",
    "SessionComparison",
    "SessionExperiment",
    "SessionGNN",
    "SessionHybrid",
    "SessionMixture",
    "SessionModel",
    "SessionPopularity",
    "SessionSplit",
    "Sessions",
    "VSKNN",
    "build_sessions",
    "compare_session_models",
    "evaluate_sessions",
    "load_next_song_predictor",
    "make_session_model",
    "prepare_sessions",
    "selection_summary",
    "session_split",
]
