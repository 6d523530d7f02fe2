"""gnn.users: recommendations for a user: baselines, graph models, training, pipeline, write-back rows."""

from gnn.users._baselines import ALS, EASE, ItemKNN, Oracle, Popularity, RP3beta
from gnn.users._distributed import ShardedConfig, edge_shard, train_data_parallel
from gnn.users._diversity import cap_ranked, cap_walk, song_artists
from gnn.users._explained import (
    Explained,
    GenreListening,
    display_names,
    explainable,
    explanation_fidelity,
    explanation_quality,
    genre_listening,
    recommend_and_explain,
    similar_songs,
    user_attention,
    writeback_rows,
)
from gnn.users._foldin import FoldIn, fold_in, foldable, prepare_fold_in
from gnn.users._hybrid import TasteHybrid
from gnn.users._inductive import UserEdges, UserEncoder, user_encoder
from gnn.users._models import BasicGAT, EnhancedGAT, LightGCNModel, RecModel
from gnn.users._pipeline import (
    MODELS,
    Experiment,
    TrainResult,
    UserSelection,
    compare_models,
    load_trained,
    make_recommender,
    oracle_from_truth,
    prepare,
    train_and_select,
    train_model,
)
from gnn.users._publish import (
    Published,
    WriteBackResult,
    run_max_per_artist,
    train_and_write_back,
    write_back,
)
from gnn.users._recommenders import (
    USER_TASK_EDGE_TYPES,
    BasicGATRecommender,
    EnhancedGATRecommender,
    GNNConfig,
    LightGCNRecommender,
)
from gnn.users._remote import Neo4jSampledTrainer
from gnn.users._train import AdvancedTrainer, SimpleTrainer, seed_everything

__all__ = [
    "ALS",
    "AdvancedTrainer",
    "BasicGAT",
    "BasicGATRecommender",
    "EASE",
    "EnhancedGAT",
    "EnhancedGATRecommender",
    "Experiment",
    "Explained",
    "FoldIn",
    "GNNConfig",
    "GenreListening",
    "ItemKNN",
    "LightGCNModel",
    "LightGCNRecommender",
    "MODELS",
    "Neo4jSampledTrainer",
    "Oracle",
    "Popularity",
    "Published",
    "RP3beta",
    "RecModel",
    "ShardedConfig",
    "SimpleTrainer",
    "TasteHybrid",
    "TrainResult",
    "USER_TASK_EDGE_TYPES",
    "UserEdges",
    "UserEncoder",
    "UserSelection",
    "WriteBackResult",
    "cap_ranked",
    "cap_walk",
    "compare_models",
    "display_names",
    "edge_shard",
    "explainable",
    "explanation_fidelity",
    "explanation_quality",
    "fold_in",
    "foldable",
    "genre_listening",
    "load_trained",
    "make_recommender",
    "oracle_from_truth",
    "prepare",
    "prepare_fold_in",
    "recommend_and_explain",
    "run_max_per_artist",
    "seed_everything",
    "similar_songs",
    "song_artists",
    "train_and_select",
    "train_and_write_back",
    "train_data_parallel",
    "train_model",
    "user_attention",
    "user_encoder",
    "write_back",
    "writeback_rows",
]
