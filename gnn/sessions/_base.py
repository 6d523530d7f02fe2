"""The contract of a next-song model: :class:`NextSongPredictor` (what serving calls) and
:class:`SessionModel` (what the harness fits and ranks); the task's protocol is described in
:mod:`gnn.sessions._data`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gnn.sessions._data import PrefixBatch, Sessions, hour_of_day
from spotify_engine import errors

log = logging.getLogger(__name__)


@runtime_checkable
class NextSongPredictor(Protocol):
    """What the API needs from a next-song model (see :func:`load_next_song_predictor`).

    ``predict_next`` ranks the catalogue for the next play: ids are graph ids (``Song.id``,
    ``User.id``); unknown input ids are ignored; the result never contains an input song, is
    sorted by score descending, has at most ``k`` items, and falls back to popularity when no
    input song is known. Thread-safe for reads.
    """

    name: str
    run_id: str | None

    def predict_next(
        self,
        *,
        recent_song_ids: Sequence[str],
        user_id: str | None = None,
        at_ms: int | None = None,
        k: int = 10,
    ) -> list[tuple[str, float]]: ...


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k, best first, equal scores by lower song index; ``-inf`` entries become
    id -1 (score ``-inf``).

    Shapes:
        scores: float32 [B, S] -> ids int64 [B, min(k, S)], scores float32 [B, min(k, S)]
    """
    import torch

    b, s = scores.shape
    k = min(k, s)
    kth = torch.topk(torch.from_numpy(scores), k, dim=1).values[:, -1].numpy()
    r, c = np.nonzero(scores >= kth[:, None])  # the top k and every tie of the k-th score
    v = scores[r, c]
    order = np.lexsort((c, -v, r))
    r, c, v = r[order], c[order], v[order]
    first = np.searchsorted(r, np.arange(b))
    keep = (np.arange(len(r)) - first[r]) < k
    ids = c[keep].reshape(b, k).astype(np.int64)
    vals = v[keep].reshape(b, k).astype(np.float32)
    ids[np.isneginf(vals)] = -1
    return ids, vals


class SessionModel(abc.ABC):
    """Base of every next-song model: fit on training sessions, score prefix batches.

    Subclasses implement ``fit`` (call :meth:`_bind` first) and ``score``; ranking,
    exclusion of input songs and the id mapping of :meth:`predict_next` are shared, so every
    model is served and evaluated by the same code.

    Attributes:
        max_len: the most recent songs of a prefix a model sees (default 50).
    """

    name: str = "session"
    max_len: int = 50
    run_id: str | None = None

    def _bind(self, train: Sessions) -> None:
        """Remember the catalogue, users and training popularity (the fallback ranking)."""
        self.song_ids_ = np.asarray(train.song_ids)
        self.num_songs_ = train.num_songs
        self.song_index_ = {str(s): i for i, s in enumerate(train.song_ids)}
        self.user_index_ = {str(u): i for i, u in enumerate(train.user_ids)}
        counts = train.play_counts()
        self.popularity_ = (counts / max(counts.max(), 1.0)).astype(np.float32)

    @abc.abstractmethod
    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        """Fit on training sessions; ``val`` (optional) for early stopping or tuning."""

    @abc.abstractmethod
    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: batch of B prefixes -> float32 [B, S]; higher ranks first."""

    def num_parameters(self) -> int:
        return 0

    def _checked_scores(self, batch: PrefixBatch) -> np.ndarray:
        scores = np.array(self.score(batch), dtype=np.float32, copy=True)
        if scores.shape != (len(batch), self.num_songs_):
            raise errors.ModelError(
                f"{self.name}: scores have shape {scores.shape}, "
                f"expected {(len(batch), self.num_songs_)}"
            )
        if np.isnan(scores).any():
            raise errors.ModelError(f"{self.name}: NaN scores", hint="retrain the model")
        return scores

    def rank(
        self, batch: PrefixBatch, k: int, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k song indices and scores per prefix (prefix songs excluded by default)."""
        scores = self._checked_scores(batch)
        if exclude_seen and len(batch.seen_rows):
            scores[batch.seen_rows, batch.seen_cols] = -np.inf
        return _top(scores, k)

    def predict_next(
        self,
        *,
        recent_song_ids: Sequence[str],
        user_id: str | None = None,
        at_ms: int | None = None,
        k: int = 10,
    ) -> list[tuple[str, float]]:
        """The ``k`` most likely next songs as ``(song id, score)``, best first.

        Unknown ids are ignored; input songs are never returned; with no known input song the
        ranking is training popularity.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer (got {k!r})")
        if isinstance(recent_song_ids, str):
            raise ValueError("recent_song_ids must be a sequence of song ids, not one string")
        known = [self.song_index_[s] for s in map(str, recent_song_ids) if s in self.song_index_]
        if not known:
            scores = self.popularity_[None, :].copy()
        else:
            items = np.asarray(known[-self.max_len :], dtype=np.int64)
            padded = np.full((1, self.max_len), -1, dtype=np.int64)
            padded[0, self.max_len - len(items) :] = items
            u = self.user_index_.get(str(user_id), -1) if user_id is not None else -1
            hour = -1 if at_ms is None else int(hour_of_day(int(at_ms)))
            batch = PrefixBatch(
                items=padded,
                user=np.array([u], dtype=np.int64),
                hour=np.array([hour], dtype=np.int64),
                seen_rows=np.zeros(len(known), dtype=np.int64),
                seen_cols=np.asarray(known, dtype=np.int64),
            )
            scores = self._checked_scores(batch)
        scores[0, known] = -np.inf
        ids, vals = _top(scores, int(k))
        return [
            (str(self.song_ids_[i]), float(v))
            for i, v in zip(ids[0], vals[0], strict=True)
            if i >= 0
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _not_fitted(model: SessionModel) -> errors.ModelError:
    return errors.ModelError(f"{model.name}: call fit before score")
