"""The one interface every recommender implements: baselines, LightGCN and the GAT models.

The harness (``gnn.core._harness``) only talks to this interface, so every model is fitted, ranked
and scored by the same code. The shape mirrors LightGCN / ``implicit``:
``recommend(user_ids, k) -> (ids, scores)``.

Protocol:
    * ``fit`` sees the training view only. ``val`` (optional) is the validation view plus the
      relevant songs per user, for early stopping or hyper-parameter choice.
    * ``score`` ranks with ``observed`` as the user's history: the training view for validation,
      training + validation for test. A model may run message passing over ``observed.hetero``
      or read ``observed.matrix``; it must not use anything else about the user.
    * ``recommend`` does the rest identically for every model: songs already in the observed
      history are excluded, optional candidate mask, full ranking (no sampled negatives), top-k.

Errors come from the one tree in :mod:`spotify_engine.errors`: ``ModelError`` for unusable
output (NaN scores, wrong shape), ``NotFittedError`` for scoring before ``fit``.
"""

from __future__ import annotations

import abc
import logging
from typing import Any

import numpy as np
import torch

from gnn.graph._data import TrainData
from spotify_engine.errors import ModelError

log = logging.getLogger(__name__)


def check_users(users: Any, num_users: int) -> np.ndarray:
    """Validate user indices and return them as a 1-D int64 array.

    Raises:
        ValueError: not 1-D integers, or an index outside ``0..num_users-1`` (named).
    """
    arr = np.asarray(users)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"users must be a 1-D array of user indices (got shape {arr.shape})")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"users must be integer indices (got dtype {arr.dtype})")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        bad = arr[(arr < 0) | (arr >= num_users)]
        if bad.size:
            raise ValueError(f"user index must be 0..{num_users - 1} (got {int(bad[0])})")
    return arr


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a score matrix, best first; ties go to the lower song index.

    Entries equal to ``-inf`` are never recommended: a row with fewer than ``k`` finite (or
    ``+inf``) entries is padded with id ``-1`` and score ``-inf``.

    Shapes:
        scores: float [n, S] -> ids int64 [n, k], scores float32 [n, k]
    """
    n, s = scores.shape
    if not 1 <= k <= s:
        raise ValueError(f"k must be 1..{s} (got {k})")
    if k < s:
        # Exact and deterministic: everything above the k-th largest value, then the
        # lowest-indexed songs among those equal to it. The k-th value comes from torch.topk:
        # numpy's introselect slows down on rows of one repeated value with a few others
        # (sparse scores with the history at -inf: 20 s for 1,024 x 200,000 against 0.2 s).
        kth = (
            torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), k, dim=1, sorted=False)
            .values.amin(dim=1, keepdim=True)
            .numpy()
        )
        above = scores > kth
        tied = scores == kth
        need = k - above.sum(axis=1)
        chosen = above | tied
        for r in np.flatnonzero(tied.sum(axis=1) > need):  # ties across the k-th place
            chosen[r, np.flatnonzero(tied[r])[need[r] :]] = False
        part = np.nonzero(chosen)[1].reshape(n, k)
    else:
        part = np.broadcast_to(np.arange(s), (n, s)).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[np.isneginf(top)] = -1
    return ids, top


class Recommender(abc.ABC):
    """Base class of every recommender.

    Subclasses implement :meth:`score` (and usually :meth:`fit`); :meth:`recommend` is shared
    so that exclusion of observed songs, candidate masks and top-k are the same for all models.

    Attributes:
        name: short lower-case name used in tables and run ids (e.g. ``"ease"``).
    """

    name: str = "recommender"

    def fit(
        self,
        train: TrainData,
        *,
        val: tuple[TrainData, list[np.ndarray]] | None = None,
    ) -> dict[str, Any]:
        """Fit on the training view.

        Args:
            train: the training view (graph and user-song matrix from training plays only).
            val: optional ``(observed view, relevant songs per user)`` for early stopping or
                tuning; the observed view is the training view, relevant songs come from
                :func:`gnn.graph.relevant_items` for ``"val"``.

        Returns:
            Fit information, free-form but JSON-serialisable, e.g. ``{"epochs": 30,
            "history": {"loss": [...], "val_recall@20": [...]}}``. Non-learned models return
            ``{}``.
        """
        return {}

    @abc.abstractmethod
    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Scores of every song for each user; higher is better.

        Args:
            users: user indices, already validated by :meth:`recommend`.
            observed: the user's history at ranking time; the only user information the model
                may use (message passing over ``observed.hetero`` or ``observed.matrix``).

        Shapes:
            users: int64 [n] -> float32 [n, num_songs]

        ``-inf`` means "never recommend". Observed songs need not be masked here;
        :meth:`recommend` does it. The returned array may be reused: recommend copies it.
        """

    def recommend(
        self,
        users: np.ndarray,
        k: int,
        observed: TrainData,
        *,
        batch_size: int = 1024,
        candidates_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` songs per user among songs not in the user's observed history.

        Args:
            users: user indices.
            k: list length, ``1..num_songs``.
            observed: history at ranking time (also the set of songs excluded per user).
            batch_size: users scored per call to :meth:`score` (default 1024).
            candidates_mask: optional bool mask of allowed songs, either shared ``[num_songs]``
                or per user ``[n, num_songs]``; observed songs are excluded regardless.

        Shapes:
            users: int [n] -> ids int64 [n, k], scores float32 [n, k]; rows sorted by
            descending score (ties: lower song index first). Rows with fewer than ``k``
            candidates are padded with id ``-1`` and score ``-inf``.

        Raises:
            ValueError: bad ``k``, ``batch_size``, user index or mask shape (value named).
            ModelError: :meth:`score` returned the wrong shape or NaN.
        """
        num_songs = observed.num_songs
        users = check_users(users, observed.num_users)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= num_songs:
            raise ValueError(f"k must be an integer 1..{num_songs} (got {k!r})")
        k = int(k)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
        mask = None
        if candidates_mask is not None:
            mask = np.asarray(candidates_mask, dtype=bool)
            if mask.shape not in ((num_songs,), (len(users), num_songs)):
                raise ValueError(
                    f"candidates_mask must have shape ({num_songs},) or "
                    f"({len(users)}, {num_songs}) (got {mask.shape})"
                )
        ids = np.empty((len(users), k), dtype=np.int64)
        top = np.empty((len(users), k), dtype=np.float32)
        matrix = observed.matrix
        for start in range(0, len(users), batch_size):
            batch = users[start : start + batch_size]
            raw = self.score(batch, observed)
            scores = np.array(raw, dtype=np.float32, copy=True)
            if scores.shape != (len(batch), num_songs):
                raise ModelError(
                    f"{self.name}.score returned shape {scores.shape}, "
                    f"expected ({len(batch)}, {num_songs})"
                )
            if np.isnan(scores).any():
                bad = int(batch[np.isnan(scores).any(axis=1)][0])
                raise ModelError(f"{self.name}.score returned NaN (first bad user index {bad})")
            seen = matrix[batch].tocoo()
            scores[seen.row, seen.col] = -np.inf
            if mask is not None:
                m = mask if mask.ndim == 1 else mask[start : start + len(batch)]
                scores[np.broadcast_to(~m, scores.shape)] = -np.inf
            ids[start : start + len(batch)], top[start : start + len(batch)] = top_k(scores, k)
        return ids, top

    def num_parameters(self) -> int:
        """Number of learned parameters (0 for non-learned models)."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
