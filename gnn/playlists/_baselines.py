"""Playlist continuation baselines.

* ``popularity``: songs in the most training playlists.
* ``namepop``: songs of training playlists with the same normalised name (weight 2) and of
  those sharing a name word (averaged over the words), popularity last. Seeds are ignored:
  the K = 0 baseline.
* ``itemknn``: item co-occurrence kNN: cosine similarity of songs over training playlists,
  summed over the seeds; with no known seed it falls back to ``namepop``.
* ``hybridknn``: ``itemknn`` plus ``namepop``, for a baseline that uses seeds and name as the
  GNN does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn.playlists._base import PlaylistModel, _csr
from gnn.playlists._data import name_tokens, normalize_name

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
