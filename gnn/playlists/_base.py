"""The contract of a playlist continuation model: :class:`PlaylistContinuer` (what serving
calls) and :class:`PlaylistModel` (fit, rank, save and load arrays).

A fitted model is plain numpy at prediction time, so loading needs neither torch modules nor
Neo4j, and :meth:`PlaylistModel.continue_playlist` only reads shared arrays: it is safe to
call from many threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from gnn.playlists._data import Cases, PlaylistCorpus
from gnn.playlists._evaluate import LIST_LENGTH
from spotify_engine.errors import ModelError

log = logging.getLogger(__name__)


@runtime_checkable
class PlaylistContinuer(Protocol):
    """What the API serves for playlist continuation (see :func:`load_playlist_continuer`)."""

    name: str
    run_id: str | None

    def continue_playlist(
        self, *, song_ids: Sequence[str], name: str | None = None, k: int = 10
    ) -> list[tuple[str, float]]: ...


def _csr(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows.astype(np.int64), cols.astype(np.int64))),
        shape=shape,
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _train_matrix(corpus: PlaylistCorpus, train: np.ndarray) -> sp.csr_matrix:
    """Binary [training playlists, songs] matrix."""
    tracks = [corpus.tracks[p] for p in train.tolist()]
    rows = np.repeat(np.arange(len(tracks)), [len(t) for t in tracks])
    cols = np.concatenate(tracks) if tracks else np.zeros(0, np.int64)
    return _csr((len(tracks), corpus.num_songs), rows, cols)


class PlaylistModel:
    """Base of the continuation models.

    Subclasses implement ``_fit`` (sees training playlists only; ``val`` cases are for early
    stopping), ``scores(seeds, names) -> float64 [B, S]`` (higher is better) and the state
    hooks. Everything else (masking the seeds, ranking, popularity fallback, ids) is here.
    """

    name: ClassVar[str] = "base"

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.song_ids = np.zeros(0, dtype=object)
        self.popularity = np.zeros(0, dtype=np.float64)
        self._index: dict[str, int] = {}

    # -- fitting ------------------------------------------------------------------------------

    def fit(
        self,
        corpus: PlaylistCorpus,
        train: np.ndarray,
        *,
        val: Cases | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Fit on the playlists ``train`` of ``corpus``; returns what training reports."""
        self.song_ids = np.asarray(corpus.song_ids, dtype=object)
        self._index = {str(s): i for i, s in enumerate(self.song_ids)}
        x = _train_matrix(corpus, np.asarray(train, dtype=np.int64))
        self.popularity = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        return self._fit(corpus, np.asarray(train, dtype=np.int64), x, val, progress) or {}

    def _fit(
        self,
        corpus: PlaylistCorpus,
        train: np.ndarray,
        x: sp.csr_matrix,
        val: Cases | None,
        progress: Callable[[str], None] | None,
    ) -> dict[str, Any] | None:
        return None

    @property
    def num_songs(self) -> int:
        return len(self.song_ids)

    def num_parameters(self) -> int:
        return 0

    # -- scoring ------------------------------------------------------------------------------

    def _tiebreak(self) -> np.ndarray:
        """Popularity scaled into [0, 1e-6): orders songs a model scores equally (zeros)."""
        top = self.popularity.max(initial=0.0)
        return self.popularity / (top * 1e6) if top > 0 else np.zeros_like(self.popularity)

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        raise NotImplementedError

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        """Whether the input holds anything this model uses (else: popularity)."""
        return len(seeds) > 0

    def rank(
        self, seeds: Sequence[np.ndarray], names: Sequence[str | None], n: int = LIST_LENGTH
    ) -> np.ndarray:
        """Top ``n`` song indices per case, best first, seeds excluded (``-1`` pads)."""
        return self._top(seeds, names, n)[0]

    def _top(
        self, seeds: Sequence[np.ndarray], names: Sequence[str | None], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        s = np.array(self.scores(seeds, names), dtype=np.float64)
        if s.shape != (len(seeds), self.num_songs):
            raise ModelError(
                f"{self.name}.scores returned shape {s.shape}, want {(len(seeds), self.num_songs)}"
            )
        if np.isnan(s).any():
            raise ModelError(f"{self.name} produced NaN scores")
        pop = self.popularity + self._tiebreak()
        for i, seed in enumerate(seeds):
            if not self.knows(seed, names[i]):
                s[i] = pop
            s[i, np.asarray(seed, dtype=np.int64)] = -np.inf
        n = min(n, self.num_songs)
        if n <= 0:
            return np.zeros((len(seeds), 0), np.int64), np.zeros((len(seeds), 0))
        part = np.argpartition(-s, n - 1, axis=1)[:, :n]
        top_s = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        idx = np.take_along_axis(part, order, axis=1)
        top_s = np.take_along_axis(top_s, order, axis=1)
        idx = np.where(np.isfinite(top_s), idx, -1)
        return idx.astype(np.int64), top_s

    def continue_playlist(
        self, *, song_ids: Sequence[str], name: str | None = None, k: int = 10
    ) -> list[tuple[str, float]]:
        """Up to ``k`` ``(song_id, score)`` to add, best first, never an input song.

        Unknown ids are ignored; with no known song (and, for name-aware models, no known
        name word) the ranking is by popularity.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int (got {k!r})")
        seeds = np.array(
            sorted({self._index[s] for s in song_ids if s in self._index}), dtype=np.int64
        )
        idx, sc = self._top([seeds], [name], k)
        return [
            (str(self.song_ids[i]), float(v)) for i, v in zip(idx[0], sc[0], strict=True) if i >= 0
        ]

    # -- state --------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Numeric arrays (saved without pickle) and JSON metadata that rebuild the model."""
        arrays = {"popularity": self.popularity}
        arrays.update(self._state_arrays())
        return arrays, {"song_ids": [str(s) for s in self.song_ids], **self._state_meta()}

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _state_meta(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> PlaylistModel:
        model = cls.__new__(cls)
        PlaylistModel.__init__(model)
        model.song_ids = np.empty(len(meta["song_ids"]), dtype=object)
        model.song_ids[:] = meta["song_ids"]
        model._index = {s: i for i, s in enumerate(meta["song_ids"])}
        model.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        model._load(arrays, meta)
        return model

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(songs={self.num_songs})"
