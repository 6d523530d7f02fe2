"""Next-song baselines, hard to beat on next-item tasks.

* :class:`SessionPopularity` -- the most played songs of the training sessions.
* :class:`Markov` -- first-order transition counts between consecutive plays of training
  sessions (the statistic the graph keeps as ``FOLLOWED_BY``), backing off to earlier prefix
  songs when the last one has no known successor, popularity breaking ties.
* :class:`SKNN` -- session-kNN (Jannach & Ludewig 2017, the "V-SKNN" variant of Ludewig &
  Jannach 2018): neighbours are the training sessions most similar (cosine) to the prefix
  with recent songs weighted more; a song scores the summed similarity of the neighbours
  that contain it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn.sessions._base import SessionModel, _not_fitted
from gnn.sessions._data import PrefixBatch, Sessions
from gnn.sessions._evaluate import evaluate_sessions

log = logging.getLogger(__name__)


class SessionPopularity(SessionModel):
    """Ranks by play count in the training sessions; the same list for every prefix."""

    name = "popularity"

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        return {}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "popularity_"):
            raise _not_fitted(self)
        return np.broadcast_to(self.popularity_, (len(batch), self.num_songs_))


def transition_matrix(train: Sessions) -> sp.csr_matrix:
    """Counts of song a followed by song b within training sessions, [S, S]."""
    a, b = train.transitions()
    s = train.num_songs
    m = sp.coo_matrix((np.ones(len(a), dtype=np.float32), (a, b)), shape=(s, s)).tocsr()
    m.sum_duplicates()
    return m


class Markov(SessionModel):
    """First-order Markov chain over consecutive plays of training sessions.

    The score of song b after prefix ``..., a`` is ``P(b | a) = count(a -> b) / count(a ->)``
    plus ``1e-3 *`` normalised popularity (a tie-break below any observed transition). If
    ``a`` was never followed by anything in training, the last prefix song that was is used.
    """

    name = "markov"

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        counts = transition_matrix(train)
        out = np.asarray(counts.sum(axis=1)).ravel()
        self.out_degree_ = out
        self.transitions_ = sp.diags(1.0 / np.maximum(out, 1.0)).dot(counts).tocsr()
        return {"transitions": int(counts.nnz)}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "transitions_"):
            raise _not_fitted(self)
        items = batch.items
        has_out = (items >= 0) & (self.out_degree_[np.maximum(items, 0)] > 0)
        # Last column with a known successor; rows with none fall back to popularity only.
        col = items.shape[1] - 1 - np.argmax(has_out[:, ::-1], axis=1)
        ok = has_out.any(axis=1)
        src = np.where(ok, items[np.arange(len(items)), col], 0)
        scores = self.transitions_[src].toarray().astype(np.float32)
        scores[~ok] = 0.0
        scores += 1e-3 * self.popularity_[None, :]
        return scores

    def num_parameters(self) -> int:
        return int(self.transitions_.nnz) if hasattr(self, "transitions_") else 0


class SKNN(SessionModel):
    """Session-based kNN with position-decayed prefix weights (V-SKNN).

    Args:
        k: neighbour sessions (default 100; with ``val``, chosen from ``k_grid`` by MRR@20).
        k_grid: candidates for ``k`` tried on validation (default ``(50, 100, 200, 500)``).
        tune_positions: validation positions used for the choice (default 20,000).
    """

    name = "sknn"

    def __init__(
        self,
        k: int = 100,
        k_grid: tuple[int, ...] = (50, 100, 200, 500),
        tune_positions: int = 20_000,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1 (got {k})")
        self.k = k
        self.k_grid = tuple(k_grid)
        self.tune_positions = tune_positions

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        rows = np.repeat(np.arange(train.num_sessions), train.lengths)
        x = sp.coo_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, train.songs)),
            shape=(train.num_sessions, train.num_songs),
        ).tocsr()
        x.data[:] = 1.0  # binary: a song repeated in a session counts once
        x.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.sum(axis=1)).ravel())
        self.sessions_ = x
        self.sessions_t_ = x.T.tocsr()
        self.inv_norm_ = (1.0 / np.maximum(norms, 1e-12)).astype(np.float32)
        tried: dict[str, float] = {}
        if val is not None and self.k_grid:
            best = (-np.inf, self.k)
            for k in self.k_grid:
                self.k = k
                mrr = evaluate_sessions(
                    self, val, (20,), max_positions=self.tune_positions, batch_size=512
                )["mrr@20"]
                tried[str(k)] = mrr
                log.info("SKNN k=%d: val mrr@20=%.4f", k, mrr)
                if mrr > best[0]:
                    best = (mrr, k)
            self.k = best[1]
        return {"k": self.k, "train_sessions": int(x.shape[0]), "val": tried}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "sessions_"):
            raise _not_fitted(self)
        items = batch.items
        b, length = items.shape
        r, c = np.nonzero(items >= 0)
        lens = (items >= 0).sum(axis=1)
        # Linear decay: the last song weighs 1, the first of an n-song prefix 1/n.
        first = length - lens
        w = (c - first[r] + 1) / np.maximum(lens[r], 1)
        q = sp.coo_matrix(
            (w.astype(np.float32), (r, items[r, c])), shape=(b, self.num_songs_)
        ).tocsr()
        q.sum_duplicates()
        qn = np.sqrt(np.asarray(q.multiply(q).sum(axis=1)).ravel())
        sim = (q @ self.sessions_t_).tocsr()  # [B, N] sparse: sessions sharing a song
        sim = sp.diags(1.0 / np.maximum(qn, 1e-12)).dot(sim).dot(sp.diags(self.inv_norm_))
        sim = sp.csr_matrix(sim)
        rows, cols, vals = [], [], []
        for i in range(b):
            lo, hi = sim.indptr[i], sim.indptr[i + 1]
            if hi == lo:
                continue
            v = sim.data[lo:hi]
            j = sim.indices[lo:hi]
            if hi - lo > self.k:
                keep = np.argpartition(-v, self.k - 1)[: self.k]
                v, j = v[keep], j[keep]
            rows.append(np.full(len(v), i))
            cols.append(j)
            vals.append(v)
        scores = np.zeros((b, self.num_songs_), dtype=np.float32)
        if rows:
            nb = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(b, self.sessions_.shape[0]),
            )
            scores += (nb @ self.sessions_).toarray()
        scores += 1e-4 * self.popularity_[None, :]
        return scores

    def num_parameters(self) -> int:
        return 0
