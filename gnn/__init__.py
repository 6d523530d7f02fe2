"""gnn: from the graph to recommendations and their explanations.

Neo4j export -> :class:`GraphSnapshot` -> temporal split -> PyG ``HeteroData`` -> models
(baselines and graph attention networks) -> one evaluation harness -> run registry ->
recommendations with faithful, model-derived explanations. Nothing here opens a driver except
the export, which is handed one.
"""

from gnn._baselines import EASE, ItemKNN, Oracle, Popularity
from gnn._data import EDGE_TYPES, Split, TrainData, build_train_data, relevant_items, temporal_split
from gnn._explain import GradientExplainer, PairExplanation, deletion_fidelity
from gnn._export import export_snapshot, load_snapshot, save_snapshot
from gnn._harness import compare, evaluate
from gnn._models import BasicGAT, EnhancedGAT, LightGCNModel
from gnn._pipeline import MODELS, make_recommender, prepare, train_model
from gnn._playlist import PlaylistContinuer, load_playlist_continuer
from gnn._recommender import ModelError, Recommender
from gnn._registry import get_active, list_runs, load_run, save_run, set_active
from gnn._session import NextSongPredictor, load_next_song_predictor
from gnn._snapshot import GraphSnapshot
from gnn._store import Neo4jFeatureStore, Neo4jGraphStore, neo4j_stores
from gnn._train import (
    AdvancedTrainer,
    BasicGATRecommender,
    EnhancedGATRecommender,
    GNNConfig,
    LightGCNRecommender,
    SimpleTrainer,
)

__all__ = [
    "EASE",
    "EDGE_TYPES",
    "MODELS",
    "AdvancedTrainer",
    "BasicGAT",
    "BasicGATRecommender",
    "EnhancedGAT",
    "EnhancedGATRecommender",
    "GNNConfig",
    "GradientExplainer",
    "GraphSnapshot",
    "ItemKNN",
    "LightGCNModel",
    "LightGCNRecommender",
    "ModelError",
    "Neo4jFeatureStore",
    "Neo4jGraphStore",
    "NextSongPredictor",
    "Oracle",
    "PairExplanation",
    "PlaylistContinuer",
    "Popularity",
    "Recommender",
    "SimpleTrainer",
    "Split",
    "TrainData",
    "build_train_data",
    "compare",
    "deletion_fidelity",
    "evaluate",
    "export_snapshot",
    "get_active",
    "list_runs",
    "load_run",
    "load_next_song_predictor",
    "load_playlist_continuer",
    "load_snapshot",
    "make_recommender",
    "neo4j_stores",
    "prepare",
    "relevant_items",
    "save_run",
    "save_snapshot",
    "set_active",
    "temporal_split",
    "train_model",
]
