"""Approximate nearest neighbours over embedding rows (issue 15): faiss HNSW, with the exact
search it is measured against.

Why: similar songs and live candidate retrieval were brute force, one ``[n, D] x [D, S]``
product per query batch; at 200,000 songs an HNSW graph answers a query in a fraction of a
millisecond instead. Scores are inner products (``metric="ip"``) or cosines (``"cosine"``:
rows normalised first). ``faiss-cpu`` is a dependency; the index is built in memory from the
vectors and never saved (rebuilding it from a run's embeddings takes seconds).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

METRICS = ("ip", "cosine")


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)} (got {metric!r})")
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(f"vectors must be 2-D [n, dim] (got shape {x.shape})")
    if metric == "cosine":
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norm > 0, norm, 1.0)
    return np.ascontiguousarray(x, dtype=np.float32)


def exact_search(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    metric: str = "ip",
    block: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k rows of ``vectors`` per query, best first (what ANN is checked on).

    Shapes:
        vectors: [n, D], queries: [q, D] -> ids int64 [q, k], scores float32 [q, k]
    """
    x = torch.from_numpy(_prepare(vectors, metric))
    q = torch.from_numpy(_prepare(queries, metric))
    k = min(k, x.shape[0])
    ids = np.empty((q.shape[0], k), dtype=np.int64)
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, q.shape[0], block):
            s = q[start : start + block] @ x.T
            val, pos = s.topk(k, dim=1)
            ids[start : start + len(pos)] = pos.numpy()
            scores[start : start + len(pos)] = val.numpy()
    return ids, scores


def ann_recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each exact top-k row found in the approximate row (ids; -1 ignored)."""
    approx, exact = np.asarray(approx), np.asarray(exact)
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(f"row counts differ: {approx.shape[0]} vs {exact.shape[0]}")
    hits = [
        len(np.intersect1d(a[a >= 0], e[e >= 0])) / max(int((e >= 0).sum()), 1)
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


@dataclass
class ANNIndex:
    """An HNSW index (faiss ``IndexHNSWFlat``) over the rows of ``vectors``.

    Args:
        vectors: float [n, D]; row ``i`` is item ``i``.
        metric: ``"ip"`` (inner product, default) or ``"cosine"``.
        m: neighbours per node of the HNSW graph (default 32).
        ef_construction: candidate list while building (default 100).
        ef_search: candidate list while searching (default 128): higher is slower and
            recalls more.

    Attributes:
        build_seconds: time to build the index.
    """

    vectors: np.ndarray
    metric: str = "ip"
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 128

    def __post_init__(self) -> None:
        import faiss

        x = _prepare(self.vectors, self.metric)
        t0 = time.perf_counter()
        index = faiss.IndexHNSWFlat(x.shape[1], self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        index.add(x)
        self.index = index
        self.size = int(x.shape[0])
        self.build_seconds = time.perf_counter() - t0
        log.info("ANN index: %d rows of %d in %.1fs", x.shape[0], x.shape[1], self.build_seconds)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k rows per query, best first (id -1, score -inf: fewer found).

        Shapes:
            queries: [q, D] -> ids int64 [q, k], scores float32 [q, k]
        """
        q = _prepare(queries, self.metric)
        if q.shape[0] == 0:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        scores, ids = self.index.search(q, min(k, self.size))
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        if ids.shape[1] < k:
            pad = k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return ids.astype(np.int64), scores

    def neighbours(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's ``k`` nearest other rows (itself left out): similar items.

        Shapes:
            -> ids int64 [n, k], scores float32 [n, k]
        """
        ids, scores = self.search(self.vectors, k + 1)
        self_hit = ids == np.arange(self.size)[:, None]
        # drop the row itself where found, else the last (weakest) neighbour
        drop = np.where(self_hit.any(1), self_hit.argmax(1), k)
        keep = np.ones_like(ids, dtype=bool)
        keep[np.arange(self.size), drop] = False
        return ids[keep].reshape(self.size, k), scores[keep].reshape(self.size, k)
