"""gnn.core: what every task shares: the recommender contract, metrics, harness, run registry, plots."""

from gnn.core._ann import ANNIndex, ann_recall, exact_search
from gnn.core._harness import compare, evaluate, evaluate_view, metric_keys
from gnn.core._metrics import (
    catalogue_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    recall_at_k,
)
from gnn.core._online import (
    ONLINE_FILE,
    OnlineExperiment,
    compare_online,
    get_online,
    start_online,
    stop_online,
)
from gnn.core._plots import plot_attention_heatmap, plot_explanation_graph, plot_training_curves
from gnn.core._recommender import Recommender, top_k
from gnn.core._registry import (
    TASKS,
    RunInfo,
    compare_table,
    get_active,
    list_runs,
    load_checkpoint,
    load_run,
    new_run_id,
    resolve_run,
    save_run,
    set_active,
)

__all__ = [
    "ANNIndex",
    "ONLINE_FILE",
    "OnlineExperiment",
    "Recommender",
    "RunInfo",
    "TASKS",
    "ann_recall",
    "catalogue_coverage",
    "compare",
    "compare_online",
    "compare_table",
    "evaluate",
    "evaluate_view",
    "exact_search",
    "get_active",
    "get_online",
    "hit_rate_at_k",
    "intra_list_diversity",
    "list_runs",
    "load_checkpoint",
    "load_run",
    "metric_keys",
    "mrr_at_k",
    "ndcg_at_k",
    "new_run_id",
    "novelty",
    "plot_attention_heatmap",
    "plot_explanation_graph",
    "plot_training_curves",
    "recall_at_k",
    "resolve_run",
    "save_run",
    "set_active",
    "start_online",
    "stop_online",
    "top_k",
]
