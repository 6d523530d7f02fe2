"""gnn.playlists: playlist continuation: corpus and cases, models, training, evaluation, pipeline."""

from gnn.playlists._base import PlaylistContinuer, PlaylistModel
from gnn.playlists._baselines import (
    EASEContinuer,
    HybridKNN,
    ItemKNNContinuer,
    NamePopularity,
    PlaylistPopularity,
)
from gnn.playlists._data import Cases, PlaylistCorpus, PlaylistSplit, make_cases, split_playlists
from gnn.playlists._evaluate import evaluate_cases
from gnn.playlists._hybrid import PlaylistHybrid
from gnn.playlists._mixture import PlaylistMixture
from gnn.playlists._pipeline import (
    PLAYLIST_BASELINES,
    PLAYLIST_MODELS,
    PlaylistResult,
    load_playlist_continuer,
    make_playlist_model,
    playlist_selection,
    save_playlist_run,
    train_playlist_models,
)
from gnn.playlists._train import GNNPlaylistConfig, PlaylistGNN

__all__ = [
    "Cases",
    "EASEContinuer",
    "GNNPlaylistConfig",
    "HybridKNN",
    "ItemKNNContinuer",
    "NamePopularity",
    "PLAYLIST_BASELINES",
    "PLAYLIST_MODELS",
    "PlaylistContinuer",
    "PlaylistCorpus",
    "PlaylistGNN",
    "PlaylistHybrid",
    "PlaylistMixture",
    "PlaylistModel",
    "PlaylistPopularity",
    "PlaylistResult",
    "PlaylistSplit",
    "evaluate_cases",
    "load_playlist_continuer",
    "make_cases",
    "make_playlist_model",
    "playlist_selection",
    "save_playlist_run",
    "split_playlists",
    "train_playlist_models",
]
