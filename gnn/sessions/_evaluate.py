"""The next-song harness: every held-out position a prediction, full ranking, HR@k and MRR@k.

Protocol in :mod:`gnn.sessions._data`; metric definitions in :mod:`gnn.core._metrics` (MRR is
truncated at k). Keys: ``hit_rate@k``, ``mrr@k``, ``coverage@k``, ``n_positions``,
``n_sessions``, ``n_repeats``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from gnn.sessions._base import SessionModel
from gnn.sessions._data import Sessions, iter_batches, positions

log = logging.getLogger(__name__)


def _check_ks(ks: Iterable[int], num_songs: int) -> tuple[int, ...]:
    out = tuple(int(k) for k in ks)
    if not out:
        raise ValueError("ks must name at least one cut-off (got none)")
    for k in out:
        if not 1 <= k <= num_songs:
            raise ValueError(f"every k must be 1..{num_songs} (got {k})")
    return out


def target_ranks(recs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1-based rank of each target in its list, ``inf`` when absent.

    With one relevant song per prediction, ``rank <= k`` is ``gnn.core._metrics.hit_rate_at_k`` and
    ``1 / rank`` (when ``rank <= k``) is ``mrr_at_k``; computed directly for speed.

    Shapes:
        recs: int64 [B, K], target: int64 [B] -> float64 [B]
    """
    match = (recs == np.asarray(target)[:, None]) & (recs >= 0)
    return np.where(match.any(axis=1), match.argmax(axis=1) + 1.0, np.inf)


def evaluate_sessions(
    model: SessionModel,
    sessions: Sessions,
    ks: Iterable[int] = (10, 20),
    *,
    exclude_seen: bool = True,
    max_positions: int | None = None,
    batch_size: int = 1024,
    seed: int = 0,
) -> dict[str, float]:
    """Predict every next song of ``sessions`` from its prefix and score the ranks.

    Args:
        model: a fitted session model.
        sessions: the held-out sessions (validation or test).
        ks: cut-offs (default ``(10, 20)``).
        exclude_seen: serving protocol (default True): prefix songs are not candidates and
            targets repeating a prefix song are left out (see the module docstring).
        max_positions: evaluate a seeded random sample of at most this many positions.
        batch_size: prefixes per scoring batch.
    """
    ks = _check_ks(ks, sessions.num_songs)
    pts = positions(sessions, exclude_seen=exclude_seen, max_positions=max_positions, seed=seed)
    kmax = max(ks)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("hit_rate", "mrr")}
    seen_top: dict[int, np.ndarray] = {k: np.zeros(sessions.num_songs, dtype=bool) for k in ks}
    for batch, target in iter_batches(sessions, pts, model.max_len, batch_size):
        recs, _ = model.rank(batch, kmax, exclude_seen=exclude_seen)
        rank = target_ranks(recs, target)
        for k in ks:
            sums[f"hit_rate@{k}"] += float(np.sum(rank <= k))
            sums[f"mrr@{k}"] += float(np.sum(np.where(rank <= k, 1.0 / rank, 0.0)))
            top = recs[:, :k]
            seen_top[k][top[top >= 0]] = True
    n = len(pts)
    out: dict[str, float] = {
        "n_positions": n,
        "n_sessions": int(len(np.unique(pts.session))),
        "n_repeats": pts.n_repeats,
    }
    for key, total in sums.items():
        out[key] = total / n if n else float("nan")
    for k in ks:
        out[f"coverage@{k}"] = float(seen_top[k].mean())
    return out
