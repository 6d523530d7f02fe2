"""Non-graph baselines the GNNs must beat, all behind the :class:`Recommender` interface.

* :class:`Popularity`: most-played songs the user has not heard.
* :class:`ItemKNN`: cosine item-item neighbourhood on the user-song matrix.
* :class:`EASE`: closed-form linear autoencoder (Steck, 2019), a strong shallow baseline.
* :class:`RP3beta`: item-item three-step random walk with a popularity penalty (Paudel et al.
  2017; the strong graph baseline of Dacrema et al. 2019).
* :class:`LinearBlend`: EASE^R plus a validation-weighted RP3beta, still exactly explainable.
* :class:`Oracle`: ranks by known true preferences; an upper bound on synthetic data.
* :class:`ALS`: ``implicit``'s alternating least squares, only if ``implicit`` is installed.

Every model uses ``observed.matrix`` (the user's history at ranking time) as the user
representation, so validation and test rankings see exactly what they are allowed to see.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn.core._linalg import spd_inverse
from gnn.core._recommender import Recommender
from gnn.graph._data import TrainData
from spotify_engine.errors import NotFittedError

log = logging.getLogger(__name__)


# Score of songs a model knows nothing about: below every real score, but still rankable.
COLD_SCORE = np.float32(-1e30)


def _weight(matrix: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """Binary or log1p-weighted copy of a play-count matrix, float32."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.eliminate_zeros()
    if weighting == "binary":
        out.data[:] = 1.0
    elif weighting == "log":
        out.data = np.log1p(out.data)
    elif weighting != "count":
        raise ValueError(f"weighting must be 'binary', 'log' or 'count' (got {weighting!r})")
    return out


def _check_view(model: Recommender, observed: TrainData, num_songs: int) -> None:
    if observed.num_songs != num_songs:
        raise ValueError(
            f"{model.name} was fitted on {num_songs} songs, the observed view has "
            f"{observed.num_songs}"
        )


class Popularity(Recommender):
    """Ranks unseen songs by how often they were played.

    Args:
        source: ``"train"`` (default) counts the plays of the fitted training view;
            ``"observed"`` counts the plays of the view passed at ranking time (train + val
            at test time), which is also legitimate history.
        by: ``"plays"`` (default) total play counts, or ``"users"`` distinct listeners.
    """

    name = "popularity"

    def __init__(self, source: str = "train", by: str = "plays") -> None:
        if source not in ("train", "observed"):
            raise ValueError(f"source must be 'train' or 'observed' (got {source!r})")
        if by not in ("plays", "users"):
            raise ValueError(f"by must be 'plays' or 'users' (got {by!r})")
        self.source = source
        self.by = by
        self.counts_: np.ndarray | None = None

    def _counts(self, matrix: sp.csr_matrix) -> np.ndarray:
        m = _weight(matrix, "binary") if self.by == "users" else matrix
        return np.asarray(m.sum(axis=0), dtype=np.float64).ravel()

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        self.counts_ = self._counts(train.matrix)
        return {}

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs] (same row for every user)."""
        if self.source == "observed":
            counts = self._counts(observed.matrix)
        else:
            if self.counts_ is None:
                raise NotFittedError(f"{self.name}: call fit before score")
            _check_view(self, observed, len(self.counts_))
            counts = self.counts_
        return np.broadcast_to(counts.astype(np.float32), (len(users), len(counts)))


def _prune_rows(m: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Keep the ``keep`` largest entries of each row of a CSR matrix (ties: lower column).

    float32 matrices with ``rows * columns <= 2**32`` (the similarity blocks) take one sort of
    64-bit keys (row, value, column) instead of a three-key ``lexsort``: about 7 x faster on
    a block of 2,048 x 20,000 songs with 3.4 million entries, the same entries kept.
    """
    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    if keep <= 0 or counts.max(initial=0) <= keep:
        return m
    n_rows, n_cols = m.shape
    row_bits = max(int(n_rows - 1).bit_length(), 1)
    col_bits = max(int(n_cols - 1).bit_length(), 1)
    if m.dtype == np.float32 and row_bits + col_bits <= 32 and not np.isnan(m.data).any():
        # float32 -> uint32 that sorts like the value, then flipped: larger values sort first
        bits = (m.data + np.float32(0.0)).view(np.uint32)  # -0.0 -> 0.0, as in lexsort
        mono = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))
        desc = (np.uint32(0xFFFFFFFF) - mono).astype(np.uint64)
        rows = np.repeat(np.arange(n_rows, dtype=np.uint64), counts)
        key = (rows << np.uint64(32 + col_bits)) | (desc << np.uint64(col_bits))
        key |= m.indices.astype(np.uint64)
        key.sort()
        rank = np.arange(len(key)) - np.repeat(m.indptr[:-1], counts)
        key = key[rank < keep]
        cols = (key & np.uint64((1 << col_bits) - 1)).astype(np.int32)
        mono = np.uint32(0xFFFFFFFF) - (
            (key >> np.uint64(col_bits)) & np.uint64(0xFFFFFFFF)
        ).astype(np.uint32)
        bits = np.where(mono >> 31 == 1, mono & np.uint32(0x7FFFFFFF), ~mono)
        indptr = np.concatenate([[0], np.cumsum(np.minimum(counts, keep))])
        out = sp.csr_matrix((bits.view(np.float32), cols, indptr), shape=m.shape)
        out.sort_indices()
        return out
    rows = np.repeat(np.arange(n_rows), counts)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order)) - m.indptr[rows[order]]
    sel = rank < keep
    return sp.csr_matrix((m.data[sel], (rows[sel], m.indices[sel])), shape=m.shape)


class ItemKNN(Recommender):
    """Item-item cosine neighbourhood: ``score(u) = x_u @ S``.

    ``S[i, j] = <X_i, X_j> / (|X_i| |X_j| + shrinkage)`` over the columns of the weighted
    training matrix, diagonal zeroed, each row pruned to its ``neighbours`` largest entries.
    Built in blocks of ``block_size`` items so that memory stays
    ``O(num_songs * neighbours)`` rather than ``O(num_songs^2)``.

    Args:
        neighbours: neighbours kept per item (default 100; 0 keeps all).
        shrinkage: added to the cosine denominator; damps similarities from few co-plays
            (default 0.0).
        weighting: ``"binary"`` (default), ``"log"`` (log1p counts) or ``"count"``; used for
            both the similarity and the user vector.
        block_size: items per similarity block (default 2048).
    """

    name = "itemknn"

    def __init__(
        self,
        neighbours: int = 100,
        shrinkage: float = 0.0,
        weighting: str = "binary",
        block_size: int = 2048,
    ) -> None:
        if neighbours < 0:
            raise ValueError(f"neighbours must be >= 0 (got {neighbours})")
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0 (got {shrinkage})")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1 (got {block_size})")
        _weight(sp.csr_matrix((1, 1)), weighting)
        self.neighbours = neighbours
        self.shrinkage = shrinkage
        self.weighting = weighting
        self.block_size = block_size
        self.similarity_: sp.csr_matrix | None = None

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        x = _weight(train.matrix, self.weighting)
        xt = x.T.tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel())
        blocks = []
        n = x.shape[1]
        for start in range(0, n, self.block_size):
            stop = min(start + self.block_size, n)
            block = (xt[start:stop] @ x).tocoo()
            denom = norms[start + block.row] * norms[block.col] + self.shrinkage
            data = np.divide(block.data, denom, out=np.zeros_like(block.data), where=denom > 0)
            keep = (block.row + start != block.col) & (data != 0)
            sim = sp.csr_matrix(
                (data[keep].astype(np.float32), (block.row[keep], block.col[keep])),
                shape=(stop - start, n),
            )
            blocks.append(_prune_rows(sim, self.neighbours))
        self.similarity_ = (
            sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, 0), dtype=np.float32)
        )
        return {"nnz": int(self.similarity_.nnz)}

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs]."""
        if self.similarity_ is None:
            raise NotFittedError(f"{self.name}: call fit before score")
        _check_view(self, observed, self.similarity_.shape[0])
        x = _weight(observed.matrix[users], self.weighting)
        return (x @ self.similarity_).toarray().astype(np.float32, copy=False)

    def contributions(
        self, user: int, songs: np.ndarray, observed: TrainData
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact parts of ``score(user, songs)``: one per song ``j`` of the user's history,
        ``x_uj * S[j, i]``; each column sums to the song's score.

        Shapes:
            songs: int64 [n] -> (history songs int64 [h], parts float64 [h, n])
        """
        if self.similarity_ is None:
            raise NotFittedError(f"{self.name}: call fit before contributions")
        _check_view(self, observed, self.similarity_.shape[0])
        x = _weight(observed.matrix[[int(user)]], self.weighting)
        hist = x.indices.astype(np.int64)
        songs = np.asarray(songs, dtype=np.int64)
        sim = self.similarity_[hist][:, songs].toarray().astype(np.float64)
        return hist, sim * x.data.astype(np.float64)[:, None]

    def similar_items(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each song's ``k`` largest positive similarities ``S[a, b]``: (a, b, weight)."""
        if self.similarity_ is None:
            raise NotFittedError(f"{self.name}: call fit before similar_items")
        top = _prune_rows(self.similarity_.multiply(self.similarity_ > 0).tocsr(), k).tocoo()
        return top.row.astype(np.int64), top.col.astype(np.int64), top.data.astype(np.float64)


def _most(counts: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest ``counts`` (ties to the lower position), ascending."""
    return np.sort(np.argsort(-counts, kind="stable")[:n])


class EASE(Recommender):
    """Embarrassingly shallow autoencoder: ``B = I - P / diag(P)``, ``P = (X^T X + l I)^-1``.

    Only songs with at least one training play enter ``X`` (the others get no information and
    are ranked after every known song); if more than ``max_items`` songs qualify, the
    ``max_items`` most-listened ones are kept. The inverse is a dense Cholesky inverse of a
    ``m x m`` matrix: for m = 20,000, 1.6 GB in float32 (3.2 GB in float64) and about a minute
    per ``l`` on two cores. float32 is the default: ``X^T X + l I`` has its smallest eigenvalue
    >= l, so for ``l`` in the usual range (tens to thousands) its condition number is far below
    what single precision can invert accurately; pass ``dtype="float64"`` for tiny ``l``.

    Args:
        l2: the regularisation ``l``; a number, or a sequence tuned on validation (highest
            ``metric``) when ``fit`` gets ``val`` (without ``val`` the first value is used).
            Default ``(100.0, 500.0, 2000.0)``.
        weighting: ``"binary"`` (default, as in the paper), ``"log"`` or ``"count"``.
        max_items: largest number of songs in the model (default 30,000).
        dtype: ``"float32"`` (default) or ``"float64"``.
        metric: validation metric for tuning (default ``"ndcg@20"``, any key of
            ``gnn.core._harness.evaluate_view``).
        tune_items: when set and more songs qualify, ``l`` is tuned on a smaller EASE^R of the
            ``tune_items`` most-listened songs (the others cold) and only the chosen ``l`` is
            fitted on every song: one full inverse instead of one per grid value. Default None:
            every grid value is fitted on every song.
    """

    name = "ease"

    def __init__(
        self,
        l2: float | Sequence[float] = (100.0, 500.0, 2000.0),
        weighting: str = "binary",
        max_items: int = 30_000,
        dtype: str = "float32",
        metric: str = "ndcg@20",
        tune_items: int | None = None,
    ) -> None:
        grid = [float(l2)] if isinstance(l2, int | float | np.number) else [float(v) for v in l2]
        if not grid or any(not v > 0 for v in grid):
            raise ValueError(f"l2 must be > 0 (got {l2!r})")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64' (got {dtype!r})")
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1 (got {max_items})")
        if tune_items is not None and tune_items < 1:
            raise ValueError(f"tune_items must be >= 1 (got {tune_items})")
        _weight(sp.csr_matrix((1, 1)), weighting)
        self.tune_items = tune_items
        self.l2_grid = grid
        self.weighting = weighting
        self.max_items = max_items
        self.dtype = dtype
        self.metric = metric
        self.l2_: float | None = None
        self.items_: np.ndarray | None = None
        self.weights_: np.ndarray | None = None
        self.num_songs_: int | None = None

    def _solve(self, gram: np.ndarray, l2: float) -> np.ndarray:
        a = gram.copy()
        a[np.diag_indices_from(a)] += l2
        b = spd_inverse(a, what=f"EASE: X^T X + l2 I (l2={l2})")
        del a
        b /= -np.diag(b).copy()[None, :]
        np.fill_diagonal(b, 0.0)
        return b.astype(self.dtype, copy=False)

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        x = _weight(train.matrix, self.weighting)
        listeners = np.diff(x.tocsc().indptr)
        items = np.flatnonzero(listeners > 0)
        if len(items) > self.max_items:
            items = items[_most(listeners[items], self.max_items)]
            log.info("EASE: keeping the %d most-listened of %d songs", len(items), len(listeners))
        self.num_songs_ = train.num_songs
        xi = x[:, items]
        gram = (xi.T @ xi).toarray().astype(self.dtype)
        del xi
        grid = self.l2_grid if val is not None else self.l2_grid[:1]
        info: dict[str, Any] = {}
        if len(grid) > 1 and self.tune_items is not None and len(items) > self.tune_items:
            top = _most(listeners[items], self.tune_items)
            l2, tried = self._grid(gram[np.ix_(top, top)], items[top], grid, val)
            info = {"tuned_on_items": self.tune_items, "val_tuning": tried}
            grid = [l2]
        l2, tried = self._grid(gram, items, grid, val if len(grid) > 1 else None)
        return {"l2": l2, "num_items": int(len(items)), "val": tried, **info}

    def _grid(
        self,
        gram: np.ndarray,
        items: np.ndarray,
        grid: list[float],
        val: tuple[TrainData, list[np.ndarray]] | None,
    ) -> tuple[float, dict[str, float]]:
        """Fit on the songs ``items`` (``gram`` is their ``X^T X``) for each ``l`` of ``grid``
        and keep the best on ``val`` (without ``val``, ``grid`` has one value). Returns the
        ``l`` kept and each one's score."""
        self.items_ = items
        tried: dict[str, float] = {}
        best: tuple[float, float, np.ndarray] | None = None
        for l2 in grid:
            t0 = time.perf_counter()
            self.weights_ = self._solve(gram, l2)
            self.l2_ = l2
            if val is None:
                best = (np.nan, l2, self.weights_)
                break
            from gnn.core._harness import evaluate_view

            k = int(self.metric.split("@")[1]) if "@" in self.metric else 20
            value = evaluate_view(self, val[0], val[1], (k,), beyond_accuracy=False)[self.metric]
            tried[str(l2)] = value
            log.info(
                "EASE l2=%g on %d songs: %s=%.4f (%.1fs)",
                l2, len(items), self.metric, value, time.perf_counter() - t0,
            )  # fmt: skip
            value = float(np.nan_to_num(value, nan=-np.inf))
            if best is None or value > best[0]:
                best = (value, l2, self.weights_)
        assert best is not None
        _, self.l2_, self.weights_ = best
        return self.l2_, tried

    def memory_bytes(self, train: TrainData) -> int:
        """Peak bytes :meth:`fit` needs on ``train`` (issue 15): about 4.5 dense ``m x m``
        matrices of ``dtype`` (the Gram matrix, its factor and inverse, the triangle copies),
        with ``m`` the songs kept (listened, at most ``max_items``). At m = 20,000 in float32
        that is 6.7 GiB (7 GiB was measured); at 30,000, 15 GiB."""
        listeners = np.diff(train.matrix.tocsc().indptr)
        m = min(int((listeners > 0).sum()), self.max_items)
        return int(4.5 * m * m * np.dtype(self.dtype).itemsize)

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs]."""
        if self.weights_ is None or self.items_ is None or self.num_songs_ is None:
            raise NotFittedError(f"{self.name}: call fit before score")
        _check_view(self, observed, self.num_songs_)
        x = _weight(observed.matrix[users], self.weighting)[:, self.items_]
        out = np.full((len(users), self.num_songs_), COLD_SCORE, dtype=np.float32)
        out[:, self.items_] = np.asarray(x @ self.weights_, dtype=np.float32)
        return out

    def contributions(
        self, user: int, songs: np.ndarray, observed: TrainData
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact parts of ``score(user, songs)``: one per song ``j`` of the user's history
        in the model, ``x_uj * B[j, i]``; each column sums to the song's score (0 for songs
        outside the model, which score :data:`COLD_SCORE`).

        Shapes:
            songs: int64 [n] -> (history songs int64 [h], parts float64 [h, n])
        """
        if self.weights_ is None or self.items_ is None or self.num_songs_ is None:
            raise NotFittedError(f"{self.name}: call fit before contributions")
        _check_view(self, observed, self.num_songs_)
        x = _weight(observed.matrix[[int(user)]], self.weighting)[:, self.items_].tocsr()
        rows = x.indices
        songs = np.asarray(songs, dtype=np.int64)
        col = np.searchsorted(self.items_, songs)
        col = np.minimum(col, len(self.items_) - 1)
        known = self.items_[col] == songs
        parts = np.zeros((len(rows), len(songs)), dtype=np.float64)
        if len(rows) and known.any():
            w = self.weights_[np.ix_(rows, col[known])].astype(np.float64)
            parts[:, known] = w * x.data.astype(np.float64)[:, None]
        return self.items_[rows].astype(np.int64), parts

    def similar_items(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each modelled song's ``k`` largest positive weights ``B[a, b]``: (a, b, weight)."""
        if self.weights_ is None or self.items_ is None:
            raise NotFittedError(f"{self.name}: call fit before similar_items")
        w = self.weights_
        kk = min(k, w.shape[1] - 1)
        if kk <= 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        top = np.argpartition(-w, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(w, top, axis=1)
        rows = np.repeat(np.arange(w.shape[0]), kk)
        keep = vals.ravel() > 0
        return (
            self.items_[rows[keep]].astype(np.int64),
            self.items_[top.ravel()[keep]].astype(np.int64),
            vals.ravel()[keep].astype(np.float64),
        )

    def num_parameters(self) -> int:
        return 0 if self.weights_ is None else int(self.weights_.size)


class RP3beta(Recommender):
    """Three-step random walk item -> user -> item, damped by popularity: ``score(u) = x_u @ W``.

    ``P_ui`` and ``P_iu`` are the row-normalised user->song and song->user transition
    matrices of the binary training matrix, each entry raised to ``alpha``;
    ``W[i, j] = (P_iu @ P_ui)[i, j] / pop_j ** beta`` with ``pop_j`` the song's listeners,
    diagonal zeroed and each row pruned to its ``neighbours`` largest entries. ``beta = 0``,
    ``alpha = 1`` is plain P3alpha; a larger ``beta`` trades hits for long-tail songs.

    ``alpha`` and ``beta`` may be sequences: with ``val`` in ``fit`` every pair is tried and
    the best on validation ``metric`` is kept (without ``val``, the first pair). The walk
    product is computed once per ``alpha``, in blocks of ``block_size`` songs; every ``beta``
    only rescales its columns.

    Args:
        alpha: transition exponent(s) (default ``(0.5, 1.0)``).
        beta: popularity penalty exponent(s) (default ``(0.0, 0.25, 0.5)``).
        neighbours: neighbours kept per song (default 100; 0 keeps all).
        block_size: songs per product block (default 2048).
        metric: validation metric for tuning (default ``"ndcg@10"``).
    """

    name = "rp3beta"

    def __init__(
        self,
        alpha: float | Sequence[float] = (0.5, 1.0),
        beta: float | Sequence[float] = (0.0, 0.25, 0.5),
        neighbours: int = 100,
        block_size: int = 2048,
        metric: str = "ndcg@10",
    ) -> None:
        def grid(v: float | Sequence[float], what: str, low: float) -> list[float]:
            out = [float(v)] if isinstance(v, int | float | np.number) else [float(x) for x in v]
            if not out or any(not x >= low for x in out):
                raise ValueError(f"{what} must be >= {low:g} (got {v!r})")
            return out

        self.alpha_grid = grid(alpha, "alpha", 0.0)
        self.beta_grid = grid(beta, "beta", 0.0)
        if neighbours < 0:
            raise ValueError(f"neighbours must be >= 0 (got {neighbours})")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1 (got {block_size})")
        self.neighbours = neighbours
        self.block_size = block_size
        self.metric = metric
        self.alpha_: float | None = None
        self.beta_: float | None = None
        self.similarity_: sp.csr_matrix | None = None

    @staticmethod
    def _transitions(x: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
        """Row-normalised copy of ``x`` with every entry raised to ``alpha`` (float64)."""
        out = sp.csr_matrix(x, dtype=np.float64, copy=True)
        sums = np.asarray(out.sum(axis=1), dtype=np.float64).ravel()
        out.data /= np.repeat(np.where(sums > 0, sums, 1.0), np.diff(out.indptr))
        out.data **= alpha
        return out

    def _walks(self, x: sp.csr_matrix, alpha: float, betas: list[float]) -> list[sp.csr_matrix]:
        """``W`` for one ``alpha`` and every ``beta`` (see the class docstring)."""
        p_ui = self._transitions(x, alpha)
        p_iu = self._transitions(x.T.tocsr(), alpha)
        pop = np.diff(x.tocsc().indptr).astype(np.float64)
        n = x.shape[1]
        blocks: list[list[sp.csr_matrix]] = [[] for _ in betas]
        for start in range(0, n, self.block_size):
            stop = min(start + self.block_size, n)
            block = (p_iu[start:stop] @ p_ui).tocsr()
            block.sort_indices()
            rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
            keep = (rows + start != block.indices) & (block.data != 0)
            indptr = np.concatenate(
                [[0], np.cumsum(np.bincount(rows[keep], minlength=stop - start))]
            )
            cols, data = block.indices[keep], block.data[keep]
            for b, beta in enumerate(betas):
                scaled = data / np.power(np.where(pop[cols] > 0, pop[cols], 1.0), beta)
                sim = sp.csr_matrix(
                    (scaled.astype(np.float32), cols, indptr), shape=(stop - start, n)
                )
                blocks[b].append(_prune_rows(sim, self.neighbours))
        return [
            sp.vstack(bl, format="csr") if bl else sp.csr_matrix((0, n), dtype=np.float32)
            for bl in blocks
        ]

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        x = _weight(train.matrix, "binary")
        alphas = self.alpha_grid if val is not None else self.alpha_grid[:1]
        betas = self.beta_grid if val is not None else self.beta_grid[:1]
        if len(alphas) * len(betas) == 1:
            val = None  # nothing to choose: no validation pass (a refit with chosen values)
        tried: dict[str, float] = {}
        best: tuple[float, float, float, sp.csr_matrix] | None = None
        for alpha in alphas:
            t0 = time.perf_counter()
            for beta, sim in zip(betas, self._walks(x, alpha, betas), strict=True):
                self.similarity_, self.alpha_, self.beta_ = sim, alpha, beta
                if val is None:
                    best = (np.nan, alpha, beta, sim)
                    break
                from gnn.core._harness import evaluate_view

                k = int(self.metric.split("@")[1]) if "@" in self.metric else 10
                got = evaluate_view(self, val[0], val[1], (k,), beyond_accuracy=False)
                value = float(np.nan_to_num(got[self.metric], nan=-np.inf))
                tried[f"alpha={alpha:g},beta={beta:g}"] = got[self.metric]
                log.info(
                    "RP3beta alpha=%g beta=%g: %s=%.4f (%.1fs)",
                    alpha, beta, self.metric, got[self.metric], time.perf_counter() - t0,
                )  # fmt: skip
                if best is None or value > best[0]:
                    best = (value, alpha, beta, sim)
        assert best is not None
        _, self.alpha_, self.beta_, self.similarity_ = best
        return {
            "alpha": self.alpha_,
            "beta": self.beta_,
            "nnz": int(self.similarity_.nnz),
            "val": tried,
        }

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs]."""
        if self.similarity_ is None:
            raise NotFittedError(f"{self.name}: call fit before score")
        _check_view(self, observed, self.similarity_.shape[0])
        x = _weight(observed.matrix[users], "binary")
        return (x @ self.similarity_).toarray().astype(np.float32, copy=False)

    def contributions(
        self, user: int, songs: np.ndarray, observed: TrainData
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact parts of ``score(user, songs)``: one per song ``j`` of the user's history,
        ``W[j, i]`` (the history is binary); each column sums to the song's score.

        Shapes:
            songs: int64 [n] -> (history songs int64 [h], parts float64 [h, n])
        """
        if self.similarity_ is None:
            raise NotFittedError(f"{self.name}: call fit before contributions")
        _check_view(self, observed, self.similarity_.shape[0])
        x = _weight(observed.matrix[[int(user)]], "binary")
        hist = x.indices.astype(np.int64)
        songs = np.asarray(songs, dtype=np.int64)
        return hist, self.similarity_[hist][:, songs].toarray().astype(np.float64)

    def similar_items(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each song's ``k`` largest walk weights ``W[a, b]``: (a, b, weight)."""
        if self.similarity_ is None:
            raise NotFittedError(f"{self.name}: call fit before similar_items")
        top = _prune_rows(self.similarity_.multiply(self.similarity_ > 0).tocsr(), k).tocoo()
        return top.row.astype(np.int64), top.col.astype(np.int64), top.data.astype(np.float64)

    def num_parameters(self) -> int:
        return 0 if self.similarity_ is None else int(self.similarity_.nnz)


def adopt_ease_rp3(model: Any, fitted: dict[str, Recommender], seconds: dict[str, float]) -> None:
    """Give ``model`` (a :class:`LinearBlend` or a taste hybrid: ``ease``, ``rp3`` and
    ``reused_seconds`` attributes) the fitted ``ease`` and ``rp3beta`` of a selection, adding
    their training seconds to the seconds it reused."""
    ease, rp3 = fitted.get("ease"), fitted.get("rp3beta")
    if isinstance(ease, EASE) and ease.weights_ is not None:
        model.ease = ease
        model.reused_seconds += seconds.get("ease", 0.0)
    if isinstance(rp3, RP3beta) and rp3.similarity_ is not None:
        model.rp3 = rp3
        model.reused_seconds += seconds.get("rp3beta", 0.0)


class LinearBlend(Recommender):
    """EASE^R plus ``w`` times RP3beta, both linear in the user's history, so the blend is too:
    ``score(u) = x_u @ (B + w c W)``, with ``c`` a global scale that puts the two on the same
    footing (the ratio of their mean top-1 training scores) and ``w`` picked on validation
    from ``weights`` (``0`` is EASE^R alone, so on validation the blend never loses to it).

    The parts come fitted from :meth:`adopt` (the selection fits EASE^R and RP3beta first and
    hands them over; their seconds count in ``fit_info["reused_train_seconds"]``) or are fitted
    here with their own validation tuning.

    Args:
        weights: blend weights tried on validation (default ``(0, 0.25, 0.5, 1, 2)``).
        metric: validation metric (default ``"ndcg@10"``).
    """

    name = "easerp3"

    def __init__(
        self, weights: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0), metric: str = "ndcg@10"
    ) -> None:
        grid = [float(w) for w in weights]
        if not grid or any(not w >= 0 for w in grid):
            raise ValueError(f"weights must be >= 0 (got {weights!r})")
        self.weights = grid
        self.metric = metric
        self.ease: EASE | None = None
        self.rp3: RP3beta | None = None
        self.reused_seconds = 0.0
        self.scale_: float | None = None
        self.weight_: float | None = None

    def adopt(self, fitted: dict[str, Recommender], seconds: dict[str, float]) -> None:
        """Reuse fitted ``ease`` and ``rp3beta`` models (the others are ignored)."""
        adopt_ease_rp3(self, fitted, seconds)

    def memory_bytes(self, train: TrainData) -> int:
        """Peak bytes :meth:`fit` needs: EASE^R's (:meth:`EASE.memory_bytes`) unless a fitted
        one was adopted."""
        return 0 if self.ease is not None else EASE().memory_bytes(train)

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        if self.ease is None:
            self.ease = EASE()
            self.ease.fit(train, val=val)
        if self.rp3 is None:
            self.rp3 = RP3beta()
            self.rp3.fit(train, val=val)
        users = np.arange(train.num_users)
        top_e = self.ease.score(users, train).max(axis=1)
        top_r = self.rp3.score(users, train).max(axis=1)
        mean_r = float(np.mean(top_r))
        self.scale_ = float(np.mean(top_e)) / mean_r if mean_r > 0 else 1.0
        grid = self.weights if val is not None else self.weights[:1]
        tried: dict[str, float] = {}
        best: tuple[float, float] | None = None
        for w in grid:
            self.weight_ = w
            if val is None:
                best = (np.nan, w)
                break
            from gnn.core._harness import evaluate_view

            k = int(self.metric.split("@")[1]) if "@" in self.metric else 10
            got = evaluate_view(self, val[0], val[1], (k,), beyond_accuracy=False)[self.metric]
            tried[f"{w:g}"] = got
            value = float(np.nan_to_num(got, nan=-np.inf))
            if best is None or value > best[0]:
                best = (value, w)
        assert best is not None
        self.weight_ = best[1]
        return {
            "weight": self.weight_,
            "scale": self.scale_,
            "val": tried,
            "ease_l2": self.ease.l2_,
            "rp3_alpha": self.rp3.alpha_,
            "rp3_beta": self.rp3.beta_,
            "reused_train_seconds": self.reused_seconds,
        }

    def _parts(self) -> tuple[EASE, RP3beta, float]:
        if self.ease is None or self.rp3 is None or self.weight_ is None or self.scale_ is None:
            raise NotFittedError(f"{self.name}: call fit before score")
        return self.ease, self.rp3, self.weight_ * self.scale_

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs]."""
        ease, rp3, w = self._parts()
        out = ease.score(users, observed)
        if w:
            out = out + np.float32(w) * rp3.score(users, observed)
        return out

    def contributions(
        self, user: int, songs: np.ndarray, observed: TrainData
    ) -> tuple[np.ndarray, np.ndarray]:
        """EASE^R's parts plus ``w c`` times RP3beta's, over the user's whole history; each
        column sums to the song's score (EASE^R's cold songs keep their cold score).

        Shapes:
            songs: int64 [n] -> (history songs int64 [h], parts float64 [h, n])
        """
        ease, rp3, w = self._parts()
        hist, parts = rp3.contributions(user, songs, observed)
        parts = parts * w
        e_hist, e_parts = ease.contributions(user, songs, observed)
        order = np.argsort(hist, kind="stable")
        parts[order[np.searchsorted(hist[order], e_hist)]] += e_parts
        return hist, parts

    def similar_items(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """EASE^R's item-item weights (the larger part of the blend)."""
        ease, _, _ = self._parts()
        return ease.similar_items(k)

    def num_parameters(self) -> int:
        ease, rp3, _ = self._parts()
        return ease.num_parameters() + rp3.num_parameters()


class Oracle(Recommender):
    """Ranks by a known true-preference matrix (e.g. the generator's affinities).

    Args:
        preferences: scores [num_users, num_songs]; higher means preferred.
    """

    name = "oracle"

    def __init__(self, preferences: np.ndarray) -> None:
        prefs = np.asarray(preferences, dtype=np.float32)
        if prefs.ndim != 2:
            raise ValueError(f"preferences must be 2-D [users, songs] (got shape {prefs.shape})")
        if np.isnan(prefs).any():
            raise ValueError("preferences contain NaN")
        self.preferences = prefs

    def _check(self, data: TrainData) -> None:
        if self.preferences.shape != (data.num_users, data.num_songs):
            raise ValueError(
                f"preferences have shape {self.preferences.shape}, the view is "
                f"({data.num_users}, {data.num_songs})"
            )

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        self._check(train)
        return {}

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs]."""
        self._check(observed)
        return self.preferences[users]


class ALS(Recommender):
    """Implicit-feedback ALS from the optional ``implicit`` package (not a hard dependency).

    User factors are recomputed from the observed history at ranking time, so validation and
    test plays are used as history exactly like for the other models.

    Args:
        factors: latent dimension (default 64).
        regularization: L2 weight (default 0.01).
        iterations: ALS sweeps (default 15).
        alpha: confidence scale on log1p play counts (default 10.0).
        seed: random state (default 0).
        num_threads: threads for fitting (default 0: all cores).

    Raises:
        ImportError: ``implicit`` is not installed.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        iterations: int = 15,
        alpha: float = 10.0,
        seed: int = 0,
        num_threads: int = 0,
    ) -> None:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError as exc:
            raise ImportError("ALS needs the optional package 'implicit'") from exc
        self.alpha = alpha
        self.model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            iterations=iterations,
            random_state=seed,
            num_threads=num_threads,
        )
        self.fitted = False

    def _confidence(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        return (_weight(matrix, "log") * self.alpha).tocsr()

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        self.model.fit(self._confidence(train.matrix), show_progress=False)
        self.fitted = True
        return {}

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs]."""
        if not self.fitted:
            raise NotFittedError(f"{self.name}: call fit before score")
        history = self._confidence(observed.matrix[users])
        uf = self.model.recalculate_user(np.arange(len(users)), history)
        return np.asarray(uf @ self.model.item_factors.T, dtype=np.float32)

    def num_parameters(self) -> int:
        if not self.fitted:
            return 0
        return int(self.model.user_factors.size + self.model.item_factors.size)
