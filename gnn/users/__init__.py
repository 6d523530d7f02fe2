"""gnn.users: recommendations for a user: baselines, graph models, training, pipeline, write-back rows."""

from gnn.users._baselines import ALS, EASE, ItemKNN, Oracle, Popularity
from gnn.users._explained import (
    Explained,
    display_names,
    explanation_quality,
    recommend_and_explain,
    similar_songs,
    user_attention,
    writeback_rows,
)
from gnn.users._models import BasicGAT, EnhancedGAT, LightGCNModel, RecModel
from gnn.users._pipeline import (
    MODELS,
    Experiment,
    TrainResult,
    compare_models,
    load_trained,
    make_recommender,
    oracle_from_truth,
    prepare,
    train_model,
)
from gnn.users._publish import Published, WriteBackResult, train_and_write_back, write_back
from gnn.users._recommenders import (
    USER_TASK_EDGE_TYPES,
    BasicGATRecommender,
    EnhancedGATRecommender,
    GNNConfig,
    LightGCNRecommender,
)
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
    "GNNConfig",
    "ItemKNN",
    "LightGCNModel",
    "LightGCNRecommender",
    "MODELS",
    "Oracle",
    "Popularity",
    "Published",
    "RecModel",
    "SimpleTrainer",
    "TrainResult",
    "USER_TASK_EDGE_TYPES",
    "WriteBackResult",
    "compare_models",
    "display_names",
    "explanation_quality",
    "load_trained",
    "make_recommender",
    "oracle_from_truth",
    "prepare",
    "recommend_and_explain",
    "seed_everything",
    "similar_songs",
    "train_and_write_back",
    "train_model",
    "user_attention",
    "write_back",
    "writeback_rows",
]
