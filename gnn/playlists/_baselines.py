"""Playlist continuation baselines.

* ``popularity``: songs in the most training playlists.
* ``namepop``: songs of training playlists with the same normalised name (weight 2) and of
  those sharing a name word (averaged over the words), popularity last. Seeds are ignored:
  the K = 0 baseline.
* ``itemknn``: item co-occurrence kNN: cosine similarity of songs over training playlists,
  summed over the seeds; with no known seed it falls back to ``namepop``.
* ``hybridknn``: ``itemknn`` plus ``namepop``, for a baseline that uses seeds and name as the
  GNN does.
* ``ease``: EASE^R (Steck 2019) on the training playlist x song matrix, the regularisation
  tuned on validation; with no known seed it falls back to ``namepop``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn.core._linalg import spd_inverse
from gnn.playlists._base import PlaylistModel, _csr
from gnn.playlists._data import Cases, name_tokens, normalize_name
from gnn.playlists._evaluate import evaluate_cases

log = logging.getLogger(__name__)


class PlaylistPopularity(PlaylistModel):
    """Songs in the most training playlists, whatever the input."""

    name = "popularity"

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        return np.tile(self.popularity + self._tiebreak(), (len(seeds), 1))

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        return True


class NamePopularity(PlaylistModel):
    """Songs of training playlists named like this one.

    ``score = 2 * share_exact + mean_word share_word``, where ``share_exact`` is the share of
    training playlists with the same normalised name that hold the song, and ``share_word``
    the same for playlists whose name has that word; words seen in fewer than ``min_count``
    training names are ignored.
    """

    name = "namepop"

    def __init__(self, min_count: int = 1):
        super().__init__()
        self.min_count = min_count
        self.names: dict[str, int] = {}
        self.words: dict[str, int] = {}
        self.name_songs = sp.csr_matrix((0, 0), dtype=np.float32)
        self.word_songs = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        norm = [normalize_name(corpus.names[p]) for p in train.tolist()]
        names = sorted({n for n in norm if n})
        self.names = {n: i for i, n in enumerate(names)}
        rows = np.array([self.names.get(n, -1) for n in norm], dtype=np.int64)
        self.name_songs = self._shares(rows, x, len(names))
        counts: dict[str, int] = {}
        for n in norm:
            for w in set(n.split()):
                counts[w] = counts.get(w, 0) + 1
        words = sorted(w for w, c in counts.items() if c >= self.min_count)
        self.words = {w: i for i, w in enumerate(words)}
        pl_rows, word_rows = [], []
        for i, n in enumerate(norm):
            for w in set(n.split()):
                if w in self.words:
                    pl_rows.append(i)
                    word_rows.append(self.words[w])
        member = _csr((len(words), len(norm)), np.array(word_rows), np.array(pl_rows))
        self.word_songs = self._normalise(member @ x, np.asarray(member.sum(axis=1)).ravel())
        return {"names": len(names), "words": len(words)}

    @staticmethod
    def _normalise(m: sp.csr_matrix, counts: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(counts, 1.0)) @ m, dtype=np.float32)

    def _shares(self, rows: np.ndarray, x: sp.csr_matrix, n: int) -> sp.csr_matrix:
        keep = rows >= 0
        member = _csr((n, x.shape[0]), rows[keep], np.flatnonzero(keep))
        return self._normalise(member @ x, np.asarray(member.sum(axis=1)).ravel())

    def _name_rows(self, name: str | None) -> tuple[int, list[int]]:
        norm = normalize_name(name)
        return self.names.get(norm, -1), [
            self.words[w] for w in name_tokens(norm) if w in self.words
        ]

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        exact, words = self._name_rows(name)
        return exact >= 0 or bool(words)

    def name_scores(self, name: str | None) -> np.ndarray:
        exact, words = self._name_rows(name)
        s = np.zeros(self.num_songs, dtype=np.float64)
        if exact >= 0:
            s += 2.0 * self.name_songs[exact].toarray().ravel()
        if words:
            s += np.asarray(self.word_songs[words].mean(axis=0)).ravel()
        return s + self._tiebreak()

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        return np.stack([self.name_scores(n) for n in names]) if names else np.zeros((0, 0))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for key, m in (("name_songs", self.name_songs), ("word_songs", self.word_songs)):
            out[f"{key}_data"], out[f"{key}_indices"] = m.data, m.indices
            out[f"{key}_indptr"] = m.indptr
        return out

    def _state_meta(self) -> dict[str, Any]:
        return {
            "names": sorted(self.names, key=self.names.get),
            "words": sorted(self.words, key=self.words.get),
            "min_count": self.min_count,
        }  # type: ignore[arg-type]

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.min_count = int(meta.get("min_count", 1))
        self.names = {n: i for i, n in enumerate(meta["names"])}
        self.words = {w: i for i, w in enumerate(meta["words"])}
        for key, n in (("name_songs", len(self.names)), ("word_songs", len(self.words))):
            m = sp.csr_matrix(
                (arrays[f"{key}_data"], arrays[f"{key}_indices"], arrays[f"{key}_indptr"]),
                shape=(n, self.num_songs),
            )
            setattr(self, key, m)


class ItemKNNContinuer(NamePopularity):
    """Item co-occurrence kNN: ``score(j) = sum_{i in seeds} c_ij / sqrt(n_i n_j)``.

    ``c_ij`` counts training playlists holding both songs, ``n_i`` those holding song i. The
    sum is computed through the playlist-song matrix at query time (exact, no neighbour
    truncation). With no known seed it ranks like ``namepop``. With ``name_weight`` > 0 (the
    ``hybridknn`` model) the kNN scores and the ``namepop`` scores, each scaled to a maximum
    of 1, are added with that weight on the name: the baseline that, like the GNN, uses both.
    """

    name = "itemknn"

    def __init__(self, min_count: int = 1, name_weight: float = 0.0):
        super().__init__(min_count)
        self.name_weight = float(name_weight)
        self.x = sp.csc_matrix((0, 0), dtype=np.float32)
        self.xt = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        info = super()._fit(corpus, train, x, val, progress)
        self._set_matrix(sp.csc_matrix(x, dtype=np.float32))
        return info

    def _set_matrix(self, x: sp.csc_matrix) -> None:
        self.x = x
        self.xt = sp.csr_matrix(x.T)
        self._inv_sqrt = 1.0 / np.sqrt(np.maximum(self.popularity, 1.0))

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        return bool(self.popularity[seeds].sum() > 0) or super().knows(seeds, name)

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        out = np.zeros((len(seeds), self.num_songs), dtype=np.float64)
        tb = self._tiebreak()
        for i, seed in enumerate(seeds):
            seed = np.asarray(seed, dtype=np.int64)
            if len(seed) and self.popularity[seed].sum() > 0:
                w = self.x[:, seed] @ self._inv_sqrt[seed]  # weight per training playlist
                out[i] = (self.xt @ w) * self._inv_sqrt
                if self.name_weight and super().knows(seed, names[i]):
                    name = self.name_scores(names[i])
                    out[i] = out[i] / max(out[i].max(), 1e-12) + (
                        self.name_weight * name / max(name.max(), 1e-12)
                    )
                out[i] += tb
            else:
                out[i] = self.name_scores(names[i])
        return out

    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = super()._state_arrays()
        out.update(x_indices=self.x.indices, x_indptr=self.x.indptr)
        return out

    def _state_meta(self) -> dict[str, Any]:
        return {
            **super()._state_meta(),
            "num_train_playlists": int(self.x.shape[0]),
            "name_weight": self.name_weight,
        }

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._load(arrays, meta)
        self.name_weight = float(meta.get("name_weight", 0.0))
        ind = arrays["x_indices"]
        x = sp.csc_matrix(
            (np.ones(len(ind), np.float32), ind, arrays["x_indptr"]),
            shape=(int(meta["num_train_playlists"]), self.num_songs),
        )
        self._set_matrix(x)


class HybridKNN(ItemKNNContinuer):
    """``itemknn`` plus ``namepop`` (see :class:`ItemKNNContinuer`, ``name_weight`` 0.5)."""

    name = "hybridknn"

    def __init__(self, min_count: int = 1, name_weight: float = 0.5):
        super().__init__(min_count, name_weight)


class EASEContinuer(NamePopularity):
    """EASE^R (Steck 2019) on the binary training playlist x song matrix ``X``.

    ``B = I - P diag(P)^-1`` with ``P = (X^T X + l I)^-1`` (so ``diag(B) = 0``); a playlist
    with seed vector ``x`` scores ``x B``. With fewer training playlists ``n`` than songs
    ``m`` in ``X``, the same ``B`` is computed through Woodbury's identity from the ``n x n``
    matrix ``K = X X^T + l I``: ``l P = I - X^T K^-1 X``, so for a song outside the seeds
    ``(x B)_j = (x X^T K^-1 X)_j / (1 - x_j^T K^-1 x_j)``. That is exact, costs ``n^3``
    instead of ``m^3`` and keeps ``K^-1`` (``n x n``) instead of ``B`` (``m x m``). Only
    songs in at least one training playlist are in ``X``. With no known seed the ranking is
    ``namepop``'s.

    Args:
        l2: the regularisation ``l``: a number, or candidates tuned on validation R-precision
            when ``fit`` gets validation cases (default 10, 30, 100, ..., 10000, 30000).
        min_count: as for ``namepop`` (default 1).
        max_val_cases: validation cases scored per candidate (default 1500).
    """

    name = "ease"

    def __init__(
        self,
        l2: float | Sequence[float] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0),
        min_count: int = 1,
        max_val_cases: int = 1500,
    ):
        super().__init__(min_count)
        grid = [float(l2)] if isinstance(l2, int | float | np.number) else [float(v) for v in l2]
        if not grid or any(not v > 0 for v in grid):
            raise ValueError(f"l2 must be > 0 (got {l2!r})")
        self.l2_grid = grid
        self.max_val_cases = max_val_cases
        self.l2 = grid[0]
        self.items = np.zeros(0, np.int64)
        self.col = np.full(0, -1, np.int64)
        self.dual = False
        self.weights = np.zeros((0, 0), np.float32)
        self.xk = sp.csr_matrix((0, 0), dtype=np.float32)
        self.denom = np.zeros(0, np.float32)

    def num_parameters(self) -> int:
        return int(self.weights.size)

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        info = super()._fit(corpus, train, x, val, progress) or {}
        items = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() > 0)
        self.items = items.astype(np.int64)
        self.col = np.full(self.num_songs, -1, np.int64)
        self.col[items] = np.arange(len(items))
        xk = sp.csr_matrix(x[:, items], dtype=np.float64)
        n, m = xk.shape
        self.dual = n < m
        gram = (xk @ xk.T if self.dual else xk.T @ xk).toarray()
        tried: dict[str, float] = {}
        best: tuple[float, float] | None = None
        grid = (
            self.l2_grid
            if val is not None and len(val) and len(self.l2_grid) > 1
            else [self.l2_grid[0]]
        )
        if val is not None and len(val) > self.max_val_cases:
            rng = np.random.default_rng(0)
            val = val.take(np.sort(rng.choice(len(val), self.max_val_cases, replace=False)))
        for l2 in grid:
            self._solve(gram, xk, l2)
            if len(grid) == 1:
                break
            assert isinstance(val, Cases)
            res = evaluate_cases(self.rank, val, corpus.song_artist)
            score = float(res["overall"]["r_precision"])  # type: ignore[index]
            tried[str(l2)] = score
            log.info("ease l2=%g: val R-precision %.4f", l2, score)
            if progress:
                progress(f"ease l2={l2:g}: val R-precision {score:.4f}")
            if best is None or score > best[0]:
                best = (score, l2)
        if best is not None and best[1] != self.l2:
            self._solve(gram, xk, best[1])
        return {**info, "l2": self.l2, "items": int(m), "dual": self.dual, "val": tried}

    def _solve(self, gram: np.ndarray, xk: sp.csr_matrix, l2: float) -> None:
        a = gram.astype(np.float64, copy=True)
        a[np.diag_indices_from(a)] += l2
        inv = spd_inverse(a, what=f"ease: X^T X + l2 I (l2={l2:g})")
        self.l2 = l2
        if self.dual:
            # l * diag(P)_j = 1 - x_j^T K^-1 x_j, with x_j the column of song j
            quad = np.zeros(xk.shape[1])
            xc = sp.csc_matrix(xk)
            for lo in range(0, xk.shape[1], 2048):
                block = xc[:, lo : lo + 2048]
                quad[lo : lo + 2048] = np.asarray(block.multiply(inv @ block).sum(axis=0)).ravel()
            self.denom = (1.0 - quad).astype(np.float32)
            self.weights = inv.astype(np.float32)
            self.xk = sp.csr_matrix(xk, dtype=np.float32)
        else:
            d = np.diag(inv).copy()
            b = -inv / d[None, :]
            np.fill_diagonal(b, 0.0)
            self.weights = b.astype(np.float32)
            self.xk = sp.csr_matrix((0, len(self.items)), dtype=np.float32)
            self.denom = np.zeros(0, np.float32)

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        seeds = np.asarray(seeds, dtype=np.int64)
        return bool((self.col[seeds] >= 0).any()) or super().knows(seeds, name)

    def item_scores(self, seeds: Sequence[np.ndarray]) -> np.ndarray:
        """``x B`` over the songs in ``X`` (zeros elsewhere), one row per seed list.

        Shapes: B seed lists -> float64 [B, S]
        """
        m = len(self.items)
        rows = [np.full(len(s), i) for i, s in enumerate(seeds)]
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = self.col[np.concatenate([np.asarray(s, np.int64) for s in seeds])] if rows else r
        keep = c >= 0
        q = sp.csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (r[keep], c[keep])), shape=(len(seeds), m)
        )
        if self.dual:
            z = (q @ self.xk.T).toarray() @ self.weights  # [B, n]
            part = np.asarray(self.xk.T @ z.T).T / np.maximum(self.denom, 1e-12)[None, :]
        else:
            part = np.asarray(q @ self.weights)
        out = np.zeros((len(seeds), self.num_songs), dtype=np.float64)
        out[:, self.items] = part
        return out

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        out = self.item_scores(seeds)
        tb = self._tiebreak()
        for i, seed in enumerate(seeds):
            seed = np.asarray(seed, dtype=np.int64)
            if len(seed) and (self.col[seed] >= 0).any():
                out[i] += tb
            else:
                out[i] = self.name_scores(names[i])
        return out

    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = super()._state_arrays()
        out.update(ease_items=self.items, ease_weights=self.weights, ease_denom=self.denom)
        out.update(ease_x_indices=self.xk.indices, ease_x_indptr=self.xk.indptr)
        return out

    def _state_meta(self) -> dict[str, Any]:
        return {
            **super()._state_meta(),
            "l2": self.l2,
            "l2_grid": list(self.l2_grid),
            "max_val_cases": self.max_val_cases,
            "dual": self.dual,
            "ease_train_playlists": int(self.xk.shape[0]),
        }

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._load(arrays, meta)
        self.l2 = float(meta["l2"])
        self.l2_grid = [float(v) for v in meta.get("l2_grid", [self.l2])]
        self.max_val_cases = int(meta.get("max_val_cases", 1500))
        self.dual = bool(meta["dual"])
        self.items = np.asarray(arrays["ease_items"], np.int64)
        self.col = np.full(self.num_songs, -1, np.int64)
        self.col[self.items] = np.arange(len(self.items))
        self.weights = np.asarray(arrays["ease_weights"], np.float32)
        self.denom = np.asarray(arrays["ease_denom"], np.float32)
        ind = arrays["ease_x_indices"]
        self.xk = sp.csr_matrix(
            (np.ones(len(ind), np.float32), ind, arrays["ease_x_indptr"]),
            shape=(int(meta["ease_train_playlists"]), len(self.items)),
        )
