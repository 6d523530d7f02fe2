"""Non-graph baselines the GNNs must beat, all behind the :class:`Recommender` interface.

* :class:`Popularity`: most-played songs the user has not heard.
* :class:`ItemKNN`: cosine item-item neighbourhood on the user-song matrix.
* :class:`EASE`: closed-form linear autoencoder (Steck, 2019), a strong shallow baseline.
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
import scipy.linalg
import scipy.sparse as sp

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
    """Keep the ``keep`` largest entries of each row of a CSR matrix (ties: lower column)."""
    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    if keep <= 0 or counts.max(initial=0) <= keep:
        return m
    rows = np.repeat(np.arange(m.shape[0]), counts)
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
    """

    name = "ease"

    def __init__(
        self,
        l2: float | Sequence[float] = (100.0, 500.0, 2000.0),
        weighting: str = "binary",
        max_items: int = 30_000,
        dtype: str = "float32",
        metric: str = "ndcg@20",
    ) -> None:
        grid = [float(l2)] if isinstance(l2, int | float | np.number) else [float(v) for v in l2]
        if not grid or any(not v > 0 for v in grid):
            raise ValueError(f"l2 must be > 0 (got {l2!r})")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64' (got {dtype!r})")
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1 (got {max_items})")
        _weight(sp.csr_matrix((1, 1)), weighting)
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
        c, info = scipy.linalg.lapack.get_lapack_funcs("potrf", (a,))(
            a, lower=True, overwrite_a=True
        )
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: Cholesky failed (info={info}, l2={l2})")
        p, info = scipy.linalg.lapack.get_lapack_funcs("potri", (c,))(
            c, lower=True, overwrite_c=True
        )
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: inverse failed (info={info}, l2={l2})")
        del a, c
        b = np.tril(p)  # potri fills the lower triangle only
        del p
        b += np.tril(b, -1).T
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
            top = np.argsort(-listeners[items], kind="stable")[: self.max_items]
            items = np.sort(items[top])
            log.info("EASE: keeping the %d most-listened of %d songs", len(items), len(listeners))
        self.items_ = items
        self.num_songs_ = train.num_songs
        xi = x[:, items]
        gram = (xi.T @ xi).toarray().astype(self.dtype)
        grid = self.l2_grid if val is not None else self.l2_grid[:1]
        tried: dict[str, float] = {}
        best: tuple[float, float, np.ndarray] | None = None
        for l2 in grid:
            t0 = time.perf_counter()
            self.weights_ = self._solve(gram, l2)
            self.l2_ = l2
            if len(grid) == 1:
                best = (np.nan, l2, self.weights_)
                break
            from gnn.core._harness import evaluate_view

            assert val is not None
            k = int(self.metric.split("@")[1]) if "@" in self.metric else 20
            value = evaluate_view(self, val[0], val[1], (k,), beyond_accuracy=False)[self.metric]
            tried[str(l2)] = value
            log.info(
                "EASE l2=%g: %s=%.4f (%.1fs)", l2, self.metric, value, time.perf_counter() - t0
            )
            value = float(np.nan_to_num(value, nan=-np.inf))
            if best is None or value > best[0]:
                best = (value, l2, self.weights_)
        assert best is not None
        _, self.l2_, self.weights_ = best
        return {"l2": self.l2_, "num_items": int(len(items)), "val": tried}

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
