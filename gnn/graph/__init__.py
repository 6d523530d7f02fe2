"""gnn.graph: the graph as the models see it: export, snapshot files, splits, HeteroData, stores.

Export (``_export``) reads Neo4j through graphdb's named statements into a :class:`GraphSnapshot`
(``_snapshot``, with its file I/O); ``_data`` splits it in time and builds ``HeteroData``;
``_store`` serves the same graph to PyG samplers straight from Neo4j.
"""

from gnn.graph._data import (
    EDGE_TYPES,
    Split,
    TrainData,
    build_train_data,
    relevant_items,
    temporal_split,
)
from gnn.graph._export import SONG_FEATURES, export_snapshot
from gnn.graph._snapshot import GraphSnapshot, count_edges, load_snapshot, save_snapshot
from gnn.graph._store import Neo4jFeatureStore, Neo4jGraphStore, neo4j_stores

__all__ = [
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
]
