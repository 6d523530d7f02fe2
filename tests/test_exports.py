"""Every package's public surface, pinned (issue 17): a name leaves or joins ``__all__`` only
with a change here, so the door each package offers is reviewed like code."""

from __future__ import annotations

import importlib
import inspect

import pytest

from spotify_engine import errors

EXPORTS: dict[str, list[str]] = {
    "graphdb": [
        "CYPHER_DIR",
        "ComposeNeo4j",
        "ERROR_MAP",
        "Evidence",
        "FAIL_FAST",
        "GraphStats",
        "LocalServer",
        "QueryRegistry",
        "RecommendationRow",
        "ServerStatus",
        "Statement",
        "Writeback",
        "WritebackResult",
        "admin_tool_output",
        "apply_schema",
        "connect",
        "connect_async",
        "docker_available",
        "forget_bookmarks",
        "get_registry",
        "graph_errors",
        "graph_stats",
        "import_empty_database",
        "java_executable",
        "neo4j_backend",
        "port_in_use",
        "probe",
        "run_admin_tool",
        "run_read",
        "run_write",
        "schema_objects",
        "serve_guide",
        "stop_and_wait",
        "translate",
        "verify",
        "wipe_graph",
    ],
    "ingest": [
        "AUDIO_FEATURES",
        "BulkResult",
        "Check",
        "DEFAULT_GAP_MINUTES",
        "FAIL",
        "IngestOutcome",
        "IngestReport",
        "LoadResult",
        "Loader",
        "PASS",
        "ProfileResult",
        "READERS",
        "SAMPLE_SONGS",
        "SCHEMAS",
        "SOURCES",
        "SyntheticConfig",
        "TABLES",
        "TableSink",
        "Truth",
        "bulk_import",
        "check_input",
        "generate",
        "ingest",
        "load_truth",
        "oracle_scores",
        "profile_graph",
        "read_kaggle",
        "read_lastfm",
        "read_mpd",
        "read_sessions_folder",
        "validate_graph",
    ],
    "gnn": [
        "AdvancedTrainer",
        "BasicGAT",
        "BasicGATRecommender",
        "EASE",
        "EDGE_TYPES",
        "EnhancedGAT",
        "EnhancedGATRecommender",
        "GNNConfig",
        "GradientExplainer",
        "GraphSnapshot",
        "ItemKNN",
        "LightGCNModel",
        "LightGCNRecommender",
        "MODELS",
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
    ],
    "gnn.graph": [
        "EDGE_TYPES",
        "GraphSnapshot",
        "Neo4jFeatureStore",
        "Neo4jGraphStore",
        "SONG_FEATURES",
        "Split",
        "TrainData",
        "build_train_data",
        "count_edges",
        "export_snapshot",
        "load_snapshot",
        "neo4j_stores",
        "relevant_items",
        "save_snapshot",
        "temporal_split",
    ],
    "gnn.core": [
        "Recommender",
        "RunInfo",
        "TASKS",
        "catalogue_coverage",
        "compare",
        "compare_table",
        "evaluate",
        "evaluate_view",
        "get_active",
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
        "top_k",
    ],
    "gnn.explain": [
        "Attribution",
        "FidelityReport",
        "GradientExplainer",
        "NamedEvidence",
        "PairExplanation",
        "deletion_fidelity",
        "reason_text",
        "supports_explanations",
    ],
    "gnn.users": [
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
    ],
    "gnn.sessions": [
        "Markov",
        "NextSongPredictor",
        "SESSION_MODELS",
        "SKNN",
        "SessionComparison",
        "SessionExperiment",
        "SessionGNN",
        "SessionModel",
        "SessionPopularity",
        "SessionSplit",
        "Sessions",
        "build_sessions",
        "compare_session_models",
        "evaluate_sessions",
        "load_next_song_predictor",
        "make_session_model",
        "prepare_sessions",
        "session_split",
    ],
    "gnn.playlists": [
        "Cases",
        "GNNPlaylistConfig",
        "HybridKNN",
        "ItemKNNContinuer",
        "NamePopularity",
        "PLAYLIST_MODELS",
        "PlaylistContinuer",
        "PlaylistCorpus",
        "PlaylistGNN",
        "PlaylistModel",
        "PlaylistPopularity",
        "PlaylistResult",
        "PlaylistSplit",
        "evaluate_cases",
        "load_playlist_continuer",
        "make_cases",
        "make_playlist_model",
        "save_playlist_run",
        "split_playlists",
        "train_playlist_models",
    ],
    "api": [
        "NextSongPredictor",
        "PlaylistContinuer",
        "create_app",
        "get_app",
        "start_api",
        "stop_api",
    ],
}

PACKAGES = ("spotify_engine", "graphdb", "ingest", "gnn", "api", "cli")


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_exported_names_are_pinned_and_resolve(module: str) -> None:
    mod = importlib.import_module(module)
    exported = list(mod.__all__)
    assert len(exported) == len(set(exported)), f"{module}.__all__ repeats a name"
    assert sorted(exported) == EXPORTS[module]
    for name in exported:
        obj = getattr(mod, name)  # AttributeError names the missing export
        origin = getattr(obj, "__module__", None)
        if origin is not None and (inspect.isclass(obj) or inspect.isfunction(obj)):
            assert origin.split(".")[0] in PACKAGES, f"{module}.{name} comes from {origin}"


def test_subpackage_names_reach_gnn_unchanged() -> None:
    """``gnn`` re-exports subpackage names; each is the same object as in its subpackage."""
    import gnn

    for sub in ("graph", "core", "explain", "users", "sessions", "playlists"):
        pkg = importlib.import_module(f"gnn.{sub}")
        for name in set(pkg.__all__) & set(gnn.__all__):
            assert getattr(gnn, name) is getattr(pkg, name), name


def test_one_error_tree() -> None:
    """The model errors are the ground floor's, and every error class the packages define
    derives from its one root."""
    import gnn

    assert gnn.ModelError is errors.ModelError
    assert issubclass(errors.ModelError, ValueError)
    assert issubclass(errors.RunNotFound, errors.NotFound) and issubclass(
        errors.RunNotFound, LookupError
    )
    assert issubclass(errors.TrainingDiverged, errors.ModelError)
    assert issubclass(errors.NotFittedError, errors.ModelError)
    for module in EXPORTS:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) and issubclass(obj, Exception):
                assert issubclass(obj, errors.SpotifyEngineError), f"{module}.{name}"


def test_no_second_error_hierarchy() -> None:
    """Exception classes live in ``spotify_engine/errors.py``; the one exception is ingest's
    ``BadField``, a private signal that a reader turns into a quarantined row (never raised
    to a caller)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = []
    for top in ("graphdb", "ingest", "gnn", "api", "cli"):
        for path in sorted((root / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
                    if any(b.endswith(("Error", "Exception", "Failed")) for b in bases):
                        found.append(f"{path.relative_to(root)}:{node.name}")
    assert found == ["ingest/_ids.py:BadField"]
