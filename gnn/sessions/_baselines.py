"""Next-song baselines, hard to beat on next-item tasks.

* :class:`SessionPopularity` -- the most played songs of the training sessions.
* :class:`Markov` -- first-order transition counts between consecutive plays of training
  sessions (the statistic the graph keeps as ``FOLLOWED_BY``), backing off to earlier prefix
  songs when the last one has no known successor, popularity breaking ties.
* :class:`SKNN` -- session-kNN (Jannach & Ludewig 2017) with a linearly position-decayed
  query: neighbours are the training sessions most similar (cosine of the decayed prefix and
  the binary session) to the prefix; a song scores the summed similarity of the neighbours
  that contain it.
* :class:`VSKNN` -- V-SKNN (Ludewig & Jannach 2018, "vector multiplication" session kNN): the
  prefix is a vector with linear position decay (last song 1, first of n songs 1/n); the
  neighbours are drawn from the ``sample_size`` most recent training sessions sharing a song,
  similarity is the dot product with the binary neighbour, and a neighbour's songs are
  weighted by ``1 / steps back`` of the most recent prefix song it shares and by their IDF.
* :class:`STAN` -- sequence and time aware neighbourhood (Garg et al. 2019): prefix songs
  weighted ``exp(-(steps back - 1) / l1)``, neighbour sessions by recency
  ``exp(-age / l2)``, and a neighbour's songs by their distance in it to the most recent
  shared prefix song, ``exp(-|p_j - p_shared| / l3)``.

The kNN models tune their few hyper-parameters on validation MRR@20 (coordinate search over
small grids) when ``fit`` gets ``val``. Neighbour recency is measured from the last training
session: any later reference time scales every neighbour by the same factor, so the ranking
for a prefix played after training does not depend on when it was played.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn.sessions._base import SessionModel, _not_fitted
from gnn.sessions._data import PrefixBatch, Sessions, _ranges
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

    def probabilities(self, batch: PrefixBatch) -> np.ndarray:
        """``P(b | a)`` from the last prefix song ``a`` with a known successor; rows whose
        prefix has none are zero.

        Shapes: B prefixes -> float32 [B, S]
        """
        if not hasattr(self, "transitions_"):
            raise _not_fitted(self)
        items = batch.items
        has_out = (items >= 0) & (self.out_degree_[np.maximum(items, 0)] > 0)
        # Last column with a known successor; rows with none fall back to popularity only.
        col = items.shape[1] - 1 - np.argmax(has_out[:, ::-1], axis=1)
        ok = has_out.any(axis=1)
        src = np.where(ok, items[np.arange(len(items)), col], 0)
        probs = self.transitions_[src].toarray().astype(np.float32)
        probs[~ok] = 0.0
        return probs

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        scores = self.probabilities(batch)
        scores += 1e-3 * self.popularity_[None, :]
        return scores

    def num_parameters(self) -> int:
        return int(self.transitions_.nnz) if hasattr(self, "transitions_") else 0


class SKNN(SessionModel):
    """Session-based kNN, cosine similarity with a linearly position-decayed prefix.

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


def _prefix_songs(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct songs of each right-aligned prefix with their steps back (1: the last
    played; a repeated song keeps its most recent step) and the prefix lengths.

    Shapes:
        items: int64 [B, L] -> rows, songs, steps int64 [M] (sorted by row, song), lens [B]
    """
    b, length = items.shape
    r, c = np.nonzero(items >= 0)
    song = items[r, c]
    step = length - c
    order = np.lexsort((step, song, r))
    r, song, step = r[order], song[order], step[order]
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (song[1:] != song[:-1])
    r, song, step = r[first], song[first], step[first]
    return r, song, step, np.bincount(r, minlength=b)


def _with_tiebreak(scores: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Rows scaled to a maximum of 1, plus ``1e-6 *`` popularity (in [0, 1]) to order the
    songs no neighbour holds (and ties) by popularity, whatever the scale of the weights."""
    top = scores.max(axis=1, keepdims=True)
    scores /= np.where(top > 0, top, 1.0)
    scores += 1e-6 * popularity[None, :]
    return scores


class _SessionIndex:
    """Training sessions as distinct songs with their first position, for neighbour lookups.

    Shapes (N sessions, E distinct (session, song) pairs):
        x: binary [N, S] csr; xt: [S, N] csr; indptr [N + 1], song, pos int64 [E]
        (pos: 1-based position of the song's first play in its session); length [N] distinct
        songs; age_days [N] days from the session's start to the last training start.
    """

    def __init__(self, train: Sessions) -> None:
        n = train.num_sessions
        sess = np.repeat(np.arange(n, dtype=np.int64), train.lengths)
        pos = np.arange(len(train.songs), dtype=np.int64) - train.indptr[sess] + 1
        order = np.lexsort((pos, train.songs, sess))
        sess, song, pos = sess[order], train.songs[order], pos[order]
        first = np.ones(len(sess), dtype=bool)
        first[1:] = (sess[1:] != sess[:-1]) | (song[1:] != song[:-1])
        sess, song, pos = sess[first], song[first], pos[first]
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(sess, minlength=n))])
        self.song, self.pos = song, pos
        self.length = np.diff(self.indptr)
        self.x = sp.csr_matrix(
            (np.ones(len(sess), dtype=np.float32), (sess, song)), shape=(n, train.num_songs)
        )
        self.xt = self.x.T.tocsr()
        start = np.asarray(train.start, dtype=np.float64)
        self.age_days = (start.max(initial=0.0) - start) / 86_400_000.0
        self.recency = np.argsort(np.argsort(start, kind="stable"), kind="stable")  # 0: oldest
        df = np.bincount(song, minlength=train.num_songs).astype(np.float64)
        self.idf = np.where(df > 0, np.log(max(n, 1) / np.maximum(df, 1.0)), 0.0)

    def neighbours(
        self, sim: sp.csr_matrix, k: int, *, sample: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``k`` most similar sessions per row (among the ``sample`` most recent
        candidates when given) as (row, session, similarity) arrays, zeros dropped."""
        rows, cols, vals = [], [], []
        for i in range(sim.shape[0]):
            lo, hi = sim.indptr[i], sim.indptr[i + 1]
            if hi == lo:
                continue
            j, v = sim.indices[lo:hi], sim.data[lo:hi]
            if sample is not None and len(j) > sample:
                keep = np.argpartition(-self.recency[j], sample - 1)[:sample]
                j, v = j[keep], v[keep]
            if len(j) > k:
                keep = np.argpartition(-v, k - 1)[:k]
                j, v = j[keep], v[keep]
            rows.append(np.full(len(j), i, dtype=np.int64))
            cols.append(j.astype(np.int64))
            vals.append(v)
        if not rows:
            z = np.zeros(0, dtype=np.int64)
            return z, z, np.zeros(0, dtype=np.float64)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals).astype(np.float64)

    def expand(
        self,
        nb_row: np.ndarray,
        nb_sess: np.ndarray,
        q_rows: np.ndarray,
        q_songs: np.ndarray,
        q_steps: np.ndarray,
        num_songs: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The songs of each neighbour pair with what the item weights need.

        Returns ``pair`` (index into the pairs), ``song`` and ``pos`` (1-based, in the
        neighbour) per expanded entry, and per pair the steps back of the most recent prefix
        song it shares and that song's position in the neighbour.
        """
        lens = self.length[nb_sess]
        take = _ranges(self.indptr[nb_sess], lens)
        pair = np.repeat(np.arange(len(nb_sess), dtype=np.int64), lens)
        song, pos = self.song[take], self.pos[take]
        q_key = q_rows * np.int64(num_songs) + q_songs  # sorted: rows, then songs
        key = nb_row[pair] * np.int64(num_songs) + song
        at = np.minimum(np.searchsorted(q_key, key), max(len(q_key) - 1, 0))
        shared = (q_key[at] == key) if len(q_key) else np.zeros(len(key), dtype=bool)
        big = np.iinfo(np.int64).max
        step = np.where(shared, q_steps[at] if len(q_key) else 0, big)
        best_step = np.full(len(nb_sess), big, dtype=np.int64)
        np.minimum.at(best_step, pair, step)
        hit = shared & (step == best_step[pair])
        shared_pos = np.zeros(len(nb_sess), dtype=np.int64)
        shared_pos[pair[hit]] = pos[hit]
        return pair, song, pos, best_step, shared_pos


def _coordinate_search(
    model: SessionModel,
    val: Sessions,
    grids: dict[str, tuple[Any, ...]],
    positions: int,
    rounds: int = 2,
) -> dict[str, float]:
    """Tune the attributes named in ``grids`` one at a time on validation MRR@20, keeping
    the others fixed; ``rounds`` passes over the attributes. Returns every value tried."""
    tried: dict[str, float] = {}

    def score() -> float:
        key = ",".join(f"{a}={getattr(model, a)}" for a in grids)
        if key not in tried:
            tried[key] = evaluate_sessions(
                model, val, (20,), max_positions=positions, batch_size=512
            )["mrr@20"]
            log.info("%s %s: val mrr@20=%.4f", model.name, key, tried[key])
        return tried[key]

    best = score()
    for _ in range(rounds):
        changed = False
        for attr, grid in grids.items():
            keep = getattr(model, attr)
            for value in grid:
                if value == keep:
                    continue
                setattr(model, attr, value)
                mrr = score()
                if mrr > best:
                    best, keep, changed = mrr, value, True
            setattr(model, attr, keep)
        if not changed:
            break
    return tried


class VSKNN(SessionModel):
    """V-SKNN (Ludewig & Jannach 2018): vector-multiplication session kNN.

    ``score(j) = sum_{n in N(s)} sim(s, n) * decay(n) * (1 + idf_weight * idf(j)) * [j in n]``
    with ``sim`` the dot product of the linearly decayed prefix (the last song 1, the first
    of n songs 1/n) and the binary neighbour, ``decay(n) = 1 / steps back`` of the most
    recent prefix song in ``n``, ``idf(j) = log(N / sessions with j)``. ``N(s)``: the ``k``
    most similar of the ``sample_size`` most recent training sessions sharing a song.

    Args:
        k: neighbours (default 100). sample_size: recent candidate sessions (default 1000;
            None: every training session sharing a song).
        idf_weight: weight of the IDF term (default 1.0; 0 turns it off).
        tune: with ``val``, tune ``k``, ``sample_size`` and ``idf_weight`` on validation
            MRR@20 (default True). tune_positions: validation positions used (default 10,000).
    """

    name = "vsknn"
    K_GRID = (50, 100, 200, 500)
    SAMPLE_GRID: tuple[int | None, ...] = (500, 1000, 2500, 10_000, None)
    IDF_GRID = (0.0, 1.0, 5.0, 10.0, 25.0)

    def __init__(
        self,
        k: int = 100,
        sample_size: int | None = 1000,
        idf_weight: float = 1.0,
        tune: bool = True,
        tune_positions: int = 10_000,
    ) -> None:
        if k < 1 or (sample_size is not None and sample_size < 1):
            raise ValueError(f"k and sample_size must be >= 1 (got {k}, {sample_size})")
        if idf_weight < 0:
            raise ValueError(f"idf_weight must be >= 0 (got {idf_weight})")
        self.k, self.sample_size, self.idf_weight = k, sample_size, idf_weight
        self.tune, self.tune_positions = tune, tune_positions

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "sample_size": self.sample_size, "idf_weight": self.idf_weight}

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        self.index_ = _SessionIndex(train)
        tried: dict[str, float] = {}
        if val is not None and self.tune:
            grids = {"k": self.K_GRID, "sample_size": self.SAMPLE_GRID, "idf_weight": self.IDF_GRID}
            tried = _coordinate_search(self, val, grids, self.tune_positions)
        return {**self.config(), "train_sessions": train.num_sessions, "val": tried}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "index_"):
            raise _not_fitted(self)
        idx, s = self.index_, self.num_songs_
        b = len(batch)
        r, song, step, lens = _prefix_songs(batch.items)
        w = (lens[r] - step + 1) / np.maximum(lens[r], 1)  # linear decay, the last song 1
        q = sp.csr_matrix((w.astype(np.float32), (r, song)), shape=(b, s))
        sim = (q @ idx.xt).tocsr()
        nb_row, nb_sess, nb_sim = idx.neighbours(sim, self.k, sample=self.sample_size)
        scores = np.zeros((b, s), dtype=np.float32)
        if len(nb_row):
            pair, j, _, best_step, _ = idx.expand(nb_row, nb_sess, r, song, step, s)
            weight = (nb_sim / np.maximum(best_step, 1))[pair]
            weight = weight * (1.0 + self.idf_weight * idx.idf[j])
            flat = np.bincount(nb_row[pair] * s + j, weights=weight, minlength=b * s)
            scores += flat.reshape(b, s).astype(np.float32)
        return _with_tiebreak(scores, self.popularity_)


class STAN(SessionModel):
    """STAN (Garg et al. 2019): sequence and time aware neighbourhood.

    Prefix song weights ``w1 = exp(-(steps back - 1) / l1)`` (1 for the last song);
    ``sim(s, n) = sum_{i in s and n} w1(i) / sqrt(|s| |n|) * exp(-age(n) / l2)``; the ``k``
    most similar training sessions sharing a song are the neighbours; a neighbour's song j
    scores ``sim(s, n) * exp(-|p_n(j) - p_n(shared)| / l3)`` with ``p_n`` positions in
    ``n`` and ``shared`` its most recent song in common with the prefix; scores are summed
    over neighbours.

    Args:
        k: neighbours (default 100). l1: prefix decay in songs (default 2.0).
        l2: neighbour recency in days (default 7.0; ``None``: no time weighting).
        l3: in-neighbour distance decay in songs (default 2.0).
        tune: with ``val``, tune all four on validation MRR@20 (default True).
        tune_positions: validation positions used (default 10,000).
    """

    name = "stan"
    K_GRID = (50, 100, 200, 500)
    L1_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    L2_GRID = (1.0, 3.0, 7.0, 28.0, None)
    L3_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

    def __init__(
        self,
        k: int = 100,
        l1: float = 2.0,
        l2: float | None = 7.0,
        l3: float = 2.0,
        tune: bool = True,
        tune_positions: int = 10_000,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1 (got {k})")
        for label, v in (("l1", l1), ("l2", l2), ("l3", l3)):
            if v is not None and not v > 0:
                raise ValueError(f"{label} must be > 0 (got {v})")
        self.k, self.l1, self.l2, self.l3 = k, l1, l2, l3
        self.tune, self.tune_positions = tune, tune_positions

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "l1": self.l1, "l2": self.l2, "l3": self.l3}

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        self.index_ = _SessionIndex(train)
        tried: dict[str, float] = {}
        if val is not None and self.tune:
            grids = {"l1": self.L1_GRID, "l3": self.L3_GRID, "l2": self.L2_GRID, "k": self.K_GRID}
            tried = _coordinate_search(self, val, grids, self.tune_positions)
        return {**self.config(), "train_sessions": train.num_sessions, "val": tried}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "index_"):
            raise _not_fitted(self)
        idx, s = self.index_, self.num_songs_
        b = len(batch)
        r, song, step, lens = _prefix_songs(batch.items)
        w1 = np.exp(-(step - 1) / self.l1)
        q = sp.csr_matrix((w1.astype(np.float32), (r, song)), shape=(b, s))
        sim = sp.csr_matrix(q @ idx.xt)
        sim = sp.diags(1.0 / np.sqrt(np.maximum(lens, 1))).dot(sim)
        col = 1.0 / np.sqrt(np.maximum(idx.length, 1))
        if self.l2 is not None:
            col = col * np.exp(-idx.age_days / self.l2)
        sim = sp.csr_matrix(sim.dot(sp.diags(col.astype(np.float32))))
        sim.eliminate_zeros()
        nb_row, nb_sess, nb_sim = idx.neighbours(sim, self.k)
        scores = np.zeros((b, s), dtype=np.float32)
        if len(nb_row):
            pair, j, pos, _, shared_pos = idx.expand(nb_row, nb_sess, r, song, step, s)
            weight = nb_sim[pair] * np.exp(-np.abs(pos - shared_pos[pair]) / self.l3)
            flat = np.bincount(nb_row[pair] * s + j, weights=weight, minlength=b * s)
            scores += flat.reshape(b, s).astype(np.float32)
        return _with_tiebreak(scores, self.popularity_)
