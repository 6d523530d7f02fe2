"""gnn: from the graph to recommendations and their explanations, one subpackage per step and task.

    graph/      Neo4j export -> GraphSnapshot (and its files) -> temporal split -> PyG HeteroData;
                PyG remote-backend stores over Neo4j
    core/       the recommender contract, metrics, the evaluation harness, the run registry, plots
    explain/    edge-mask gradient attributions and the sentences built from them
    users/      recommendations for a user: baselines, GAT models, training, pipeline, write-back rows
    sessions/   the next song in a session: data, baselines, session GNN, evaluation, pipeline
    playlists/  playlist continuation: corpus and cases, baselines, playlist GNN, evaluation, pipeline

Each subpackage exports its public names in ``__all__``; this module re-exports the ones most
callers need. Nothing here opens a driver: the export and the write-back are handed one.
"""

from gnn.core import (
    Recommender,
    RunInfo,
    compare,
    evaluate,
    get_active,
    list_runs,
    load_run,
    resolve_run,
    save_run,
    set_active,
)
from gnn.explain import GradientExplainer, PairExplanation, deletion_fidelity
from gnn.graph import (
    EDGE_TYPES,
    GraphSnapshot,
    Neo4jFeatureStore,
    Neo4jGraphStore,
    Split,
    TrainData,
    build_train_data,
    export_snapshot,
    load_snapshot,
    neo4j_stores,
    relevant_items,
    save_snapshot,
    temporal_split,
)
from gnn.playlists import PlaylistContinuer, load_playlist_continuer
from gnn.sessions import NextSongPredictor, load_next_song_predictor
from gnn.users import (
    EASE,
    MODELS,
    AdvancedTrainer,
    BasicGAT,
    BasicGATRecommender,
    EnhancedGAT,
    EnhancedGATRecommender,
    GNNConfig,
    ItemKNN,
    LightGCNModel,
    LightGCNRecommender,
    Oracle,
    Popularity,
    SimpleTrainer,
    make_recommender,
    prepare,
    train_and_write_back,
    train_model,
)
from spotify_engine.errors import ModelError

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
    "RunInfo",
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
    "load_next_song_predictor",
    "load_playlist_continuer",
    "load_run",
    "load_snapshot",
    "make_recommender",
    "neo4j_stores",
    "prepare",
    "relevant_items",
    "resolve_run",
    "save_run",
    "save_snapshot",
    "set_active",
    "temporal_split",
    "train_and_write_back",
    "train_model",
]
