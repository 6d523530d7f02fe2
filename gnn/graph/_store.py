"""PyG remote-backend stores over Neo4j, for mini-batch training without a full export.

:class:`Neo4jGraphStore` (a ``torch_geometric.data.GraphStore``) serves ``edge_index`` per edge
type, fetched from Neo4j the first time it is asked for and cached; :class:`Neo4jFeatureStore`
(a ``FeatureStore``) serves node features read from node properties, only for the rows asked
for. Both index nodes exactly like :func:`gnn.graph._export.export_snapshot` (graph ids sorted, so
index ``i`` is the same node in a store and in an unrestricted export) and share one
:class:`NodeCatalog`, which fetches each type's id list once. Build both with
:func:`neo4j_stores` and pass ``(feature_store, graph_store)`` where PyG takes remote data.

Supported:
    * edge types stored in Neo4j: ``("user", "listened", "song")`` (``LISTENED``, one edge per
      user and song), ``("song", "by", "artist")``, ``("song", "in_genre", "genre")``,
      ``("artist", "in_genre", "genre")``, ``("playlist", "contains", "song")``, and their
      named reverses from :data:`gnn.graph._data.EDGE_TYPES`; layouts ``coo`` (sorted by source,
      or by destination with ``is_sorted=True``), ``csr`` and ``csc``;
    * attribute ``"x"`` of ``song`` (duration and audio features, the export's columns),
      ``user`` (``activity_level``), ``artist`` and ``genre`` (``popularity``); a missing
      value becomes the property's mean over all nodes of the type (0 when no node has it).

Not supported (say so rather than guess):
    * writes: ``put_*`` returns False and ``remove_*`` only evicts the local cache (the loader
      owns the graph);
    * time cut-offs and subgraphs: the stores see the whole current graph, so ``LISTENED``
      includes every period; use :func:`export_snapshot` with ``until_ms`` for evaluation;
    * edge weights and attributes, derived edge types (``("user", "likes", "genre")``) and the
      play statistics that :func:`gnn.graph._data.build_train_data` adds to node features;
    * a changing graph: ids and edges are cached; call :meth:`NodeCatalog.clear` (or make new
      stores) after a load.

PyG's samplers (``NeighborLoader`` and friends) additionally need ``pyg-lib`` or
``torch-sparse``, which this project does not install, and they read whole edge lists from the
graph store; the stores are tested through their ``get_edge_index`` / ``get_tensor`` interface
and the layout conversions PyG runs on them. :meth:`Neo4jGraphStore.sample_neighbors` asks
Neo4j for a few random neighbours of given nodes only, which is what
``gnn.users.Neo4jSampledTrainer`` trains on (issue 15): its worker holds the node catalog,
the model and one mini-batch subgraph, never an edge list.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import neo4j
import numpy as np
import torch
from torch_geometric.data import EdgeAttr, FeatureStore, GraphStore, TensorAttr
from torch_geometric.data.graph_store import EdgeLayout

from gnn.graph._data import EDGE_TYPES
from gnn.graph._export import SONG_FEATURES, GraphReader, NodeIndex, _floats, _ints, fill_missing

log = logging.getLogger(__name__)
EdgeType = tuple[str, str, str]


# Node type -> statement listing every node of the type (internal id, graph id, ...).
_NODE_STATEMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "user": ("export/list_users", {}),
    "song": ("export/list_song_ids", {}),
    "artist": ("export/list_artists", {"missing": float("nan")}),
    "genre": ("export/list_genres", {"missing": float("nan")}),
    "playlist": ("export/list_playlists", {"until": None}),
}


# Stored edge type -> statement returning its edges as internal ids.
_EDGE_STATEMENTS: dict[EdgeType, tuple[str, dict[str, Any]]] = {
    ("song", "by", "artist"): ("export/list_song_artists", {}),
    ("song", "in_genre", "genre"): ("export/list_song_genres", {}),
    ("artist", "in_genre", "genre"): ("export/list_artist_genres", {}),
    ("playlist", "contains", "song"): ("export/list_playlist_songs", {"until": None}),
}


_LISTENED: EdgeType = ("user", "listened", "song")


STORED_EDGE_TYPES: tuple[EdgeType, ...] = (_LISTENED, *_EDGE_STATEMENTS)


#: Edge type -> statement sampling the sources of given destination nodes (see
#: :meth:`Neo4jGraphStore.sample_neighbors`).
_SAMPLED: dict[EdgeType, str] = {
    _LISTENED: "export/sample_song_users",
    EDGE_TYPES[_LISTENED]: "export/sample_user_songs",
}


_REVERSE: dict[EdgeType, EdgeType] = {
    rev: fwd for fwd, rev in EDGE_TYPES.items() if fwd in STORED_EDGE_TYPES
}


#: Node feature columns per node type (attribute ``"x"``), read from these properties.
NODE_FEATURES: dict[str, tuple[str, ...]] = {
    "song": SONG_FEATURES,
    "user": ("activity_level",),
    "artist": ("popularity",),
    "genre": ("popularity",),
}


_FEATURE_STATEMENTS = {
    "song": "export/get_songs",
    "user": "export/get_users",
    "artist": "export/get_artists",
}


class NodeCatalog:
    """Each node type's dense index (sorted graph ids), fetched once per type on first use."""

    def __init__(self, driver: neo4j.Driver, database: str = "neo4j"):
        self.driver = driver
        self.database = database
        self._index: dict[str, NodeIndex] = {}
        self._means: dict[str, dict[str, float | None]] | None = None
        self._lock = threading.Lock()

    def reader(self) -> GraphReader:
        return GraphReader(self.driver, self.database)

    def index(self, node_type: str) -> NodeIndex:
        if node_type not in _NODE_STATEMENTS:
            raise KeyError(f"unknown node type {node_type!r} (known: {sorted(_NODE_STATEMENTS)})")
        with self._lock:
            if node_type not in self._index:
                name, params = _NODE_STATEMENTS[node_type]
                with self.reader() as reader:
                    self._index[node_type] = reader.nodes(name, **params)[0]
            return self._index[node_type]

    def num_nodes(self, node_type: str) -> int:
        return len(self.index(node_type))

    def means(self, node_type: str) -> np.ndarray:
        """Mean of each feature property over all nodes of the type (NaN where none is set)."""
        with self._lock:
            if self._means is None:
                with self.reader() as reader:
                    self._means = reader.one("export/feature_means")
        row = self._means[node_type]
        return np.array(
            [np.nan if row[f] is None else row[f] for f in NODE_FEATURES[node_type]], dtype=float
        )

    def clear(self) -> None:
        """Forget cached ids and means (after the graph changed)."""
        with self._lock:
            self._index.clear()
            self._means = None


def _rows(index: Any, n: int) -> np.ndarray:
    """PyG's ``TensorAttr.index`` (None, slice, int, tensor or array) as dense row numbers."""
    if index is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    if isinstance(index, torch.Tensor):
        index = index.cpu().numpy()
    rows = np.atleast_1d(np.asarray(index))
    if rows.dtype == bool:
        return np.flatnonzero(rows)
    rows = rows.astype(np.int64)
    if len(rows) and (rows.min() < -n or rows.max() >= n):
        raise IndexError(f"node index out of range for {n} nodes (got {rows.min()}..{rows.max()})")
    return np.where(rows < 0, rows + n, rows)


class Neo4jGraphStore(GraphStore):
    """Read-only ``GraphStore`` whose edges come from Neo4j, fetched lazily per edge type.

    Args:
        driver: an open driver (the caller owns it).
        database: database name (default ``"neo4j"``).
        catalog: node indices shared with a :class:`Neo4jFeatureStore` (default: a new one).

    ``get_edge_index(edge_type, layout="coo")`` returns ``(row, col)`` long tensors of dense
    indices; ``csr`` returns ``(rowptr, col)`` and ``csc`` ``(row, colptr)``.
    """

    def __init__(
        self, driver: neo4j.Driver, database: str = "neo4j", catalog: NodeCatalog | None = None
    ):
        super().__init__()
        self.catalog = catalog or NodeCatalog(driver, database)
        self._edges: dict[EdgeType, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    # -- fetching --------------------------------------------------------------------------
    def _fetch(self, edge_type: EdgeType) -> tuple[np.ndarray, np.ndarray]:
        src = self.catalog.index(edge_type[0])
        dst = self.catalog.index(edge_type[2])
        with self.catalog.reader() as reader:
            if edge_type == _LISTENED:
                users: list[int] = []
                counts: list[int] = []
                songs: list[int] = []
                for nid, song in reader.stream("export/list_user_listened"):
                    users.append(nid)
                    counts.append(len(song))
                    songs += song
                s_nids = np.repeat(_ints(users), counts)
                d_nids = _ints(songs)
            else:
                name, params = _EDGE_STATEMENTS[edge_type]
                rec = reader.one(name, **params)
                s_nids, d_nids = _ints(rec["src"]), _ints(rec["dst"])
        s, ok_s = src.lookup(s_nids)
        d, ok_d = dst.lookup(d_nids)
        ok = ok_s & ok_d
        if not ok.all():
            log.warning("%s: dropped %d edges to nodes without an id", edge_type, (~ok).sum())
        s, d = s[ok], d[ok]
        order = np.lexsort((d, s))
        return s[order], d[order]

    def _coo(self, edge_type: EdgeType) -> tuple[np.ndarray, np.ndarray] | None:
        if edge_type in _REVERSE:
            fwd = self._coo(_REVERSE[edge_type])
            if fwd is None:
                return None
            row, col = fwd[1], fwd[0]
            order = np.lexsort((col, row))
            return row[order], col[order]
        if edge_type not in STORED_EDGE_TYPES:
            return None
        with self._lock:
            if edge_type not in self._edges:
                self._edges[edge_type] = self._fetch(edge_type)
            return self._edges[edge_type]

    # -- sampling without the edge lists --------------------------------------------------
    def sample_neighbors(
        self, edge_type: EdgeType, index: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` random neighbours of each destination node ``index`` along
        ``edge_type``, asked of Neo4j for these nodes only (issue 15): a sampler that calls this
        hop by hop never holds the edge lists, only the node catalog.

        ``("user", "listened", "song")`` samples each song's listeners, the reverse
        ``("song", "listened_by", "user")`` each user's songs (PyG's convention: messages flow
        from the sampled sources to ``index``).

        Shapes:
            index: int64 [n] dense indices of ``edge_type[2]`` -> (src int64 [m] dense indices
            of ``edge_type[0]``, dst int64 [m] taken from ``index``)
        """
        if edge_type not in _SAMPLED:
            raise KeyError(f"no sampling for {edge_type}; have {sorted(_SAMPLED)}")
        if k < 1:
            raise ValueError(f"k must be >= 1 (got {k})")
        src_type, _, dst_type = edge_type
        dst_index = self.catalog.index(dst_type)
        src_index = self.catalog.index(src_type)
        index = np.asarray(index, dtype=np.int64)
        if len(index) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        srcs: list[int] = []
        counts: list[int] = []
        owners: list[int] = []
        with self.catalog.reader() as reader:
            for nid, nbrs in reader.stream(
                _SAMPLED[edge_type], nids=dst_index.nids[index].tolist(), k=int(k)
            ):
                owners.append(nid)
                counts.append(len(nbrs))
                srcs += nbrs
        dst, ok_d = dst_index.lookup(np.repeat(_ints(owners), counts))
        src, ok_s = src_index.lookup(_ints(srcs))
        ok = ok_d & ok_s
        return src[ok], dst[ok]

    @property
    def cached(self) -> list[EdgeType]:
        """Edge types whose whole edge list this store holds (fetched by ``get_edge_index``)."""
        with self._lock:
            return list(self._edges)

    # -- GraphStore ------------------------------------------------------------------------
    def _get_edge_index(self, edge_attr: EdgeAttr) -> tuple[torch.Tensor, torch.Tensor] | None:
        edge_type = tuple(edge_attr.edge_type)
        coo = self._coo(edge_type)  # type: ignore[arg-type]
        if coo is None:
            return None
        row, col = coo
        n_src = self.catalog.num_nodes(edge_type[0])
        n_dst = self.catalog.num_nodes(edge_type[2])
        layout = EdgeLayout(edge_attr.layout)
        if layout == EdgeLayout.COO:
            if edge_attr.is_sorted:  # sorted by destination
                order = np.argsort(col, kind="stable")
                row, col = row[order], col[order]
            return torch.from_numpy(row.copy()), torch.from_numpy(col.copy())
        if layout == EdgeLayout.CSR:
            ptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n_src))])
            return torch.from_numpy(ptr.astype(np.int64)), torch.from_numpy(col.copy())
        order = np.argsort(col, kind="stable")
        ptr = np.concatenate([[0], np.cumsum(np.bincount(col, minlength=n_dst))])
        return torch.from_numpy(row[order].copy()), torch.from_numpy(ptr.astype(np.int64))

    def _put_edge_index(self, edge_index: Any, edge_attr: EdgeAttr) -> bool:
        return False  # read-only: the loader owns the graph

    def _remove_edge_index(self, edge_attr: EdgeAttr) -> bool:
        """Evict the cached edges of this type (the graph is not touched)."""
        with self._lock:
            return self._edges.pop(tuple(edge_attr.edge_type), None) is not None  # type: ignore[arg-type]

    def get_all_edge_attrs(self) -> list[EdgeAttr]:
        return [
            EdgeAttr(
                et,
                EdgeLayout.COO,
                is_sorted=False,
                size=(self.catalog.num_nodes(et[0]), self.catalog.num_nodes(et[2])),
            )
            for fwd in STORED_EDGE_TYPES
            for et in (fwd, EDGE_TYPES[fwd])
        ]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(database={self.catalog.database!r}, cached={list(self._edges)})"
        )


class Neo4jFeatureStore(FeatureStore):
    """Read-only ``FeatureStore`` of node features read from Neo4j properties on demand.

    ``get_tensor(node_type, "x", index)`` fetches only the rows in ``index`` (``None``: all)
    as a float32 tensor ``[len(index), F]`` with ``F = len(NODE_FEATURES[node_type])``.

    Args:
        driver: an open driver (the caller owns it).
        database: database name (default ``"neo4j"``).
        catalog: node indices shared with a :class:`Neo4jGraphStore` (default: a new one).
    """

    def __init__(
        self, driver: neo4j.Driver, database: str = "neo4j", catalog: NodeCatalog | None = None
    ):
        super().__init__()
        self.catalog = catalog or NodeCatalog(driver, database)

    def _get_tensor(self, attr: TensorAttr) -> torch.Tensor | None:
        group, name = attr.group_name, attr.attr_name
        if group not in NODE_FEATURES or name != "x":
            raise KeyError(
                f"no feature {group!r}/{name!r}; have {[(g, 'x') for g in NODE_FEATURES]}"
            )
        index = self.catalog.index(group)
        rows = _rows(attr.index, len(index))
        cols = NODE_FEATURES[group]
        uniq, inverse = np.unique(rows, return_inverse=True)
        raw = np.full((len(uniq), len(cols)), np.nan)
        if len(uniq):
            with self.catalog.reader() as reader:
                if group == "genre":  # a handful of nodes: read them all
                    _, data = reader.nodes("export/list_genres", missing=float("nan"))
                    raw[:] = np.stack([_floats(data[c]) for c in cols], axis=1)[uniq]
                else:
                    rec = reader.one(
                        _FEATURE_STATEMENTS[group],
                        nids=index.nids[uniq].tolist(),
                        missing=float("nan"),
                    )
                    # Place rows by internal id: a node deleted meanwhile stays missing.
                    dense, ok = index.lookup(_ints(rec["nids"]))
                    if ok.any():
                        values = np.stack([_floats(rec[c]) for c in cols], axis=1)
                        raw[np.searchsorted(uniq, dense[ok])] = values[ok]
        x = fill_missing(raw, self.catalog.means(group))[inverse.reshape(-1)]
        return torch.from_numpy(x)

    def _get_tensor_size(self, attr: TensorAttr) -> tuple[int, ...] | None:
        if attr.group_name not in NODE_FEATURES or attr.attr_name != "x":
            return None
        n = self.catalog.num_nodes(attr.group_name)  # type: ignore[arg-type]
        rows = n if attr.index is None else len(_rows(attr.index, n))
        return (rows, len(NODE_FEATURES[attr.group_name]))  # type: ignore[index]

    def _put_tensor(self, tensor: Any, attr: TensorAttr) -> bool:
        return False  # read-only: the loader owns the graph

    def _remove_tensor(self, attr: TensorAttr) -> bool:
        return False

    def get_all_tensor_attrs(self) -> list[TensorAttr]:
        return [TensorAttr(group, "x") for group in NODE_FEATURES]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(database={self.catalog.database!r})"


def neo4j_stores(
    driver: neo4j.Driver, database: str = "neo4j"
) -> tuple[Neo4jFeatureStore, Neo4jGraphStore]:
    """A feature store and a graph store sharing one node catalog, in PyG's argument order."""
    catalog = NodeCatalog(driver, database)
    return (
        Neo4jFeatureStore(driver, database, catalog),
        Neo4jGraphStore(driver, database, catalog),
    )
