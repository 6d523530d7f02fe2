"""At most N songs per artist in a user's list (issue 14, item 4), N chosen on validation.

A run trained with validation (``train_model(validate=True)``, what ``spotify-engine train``
and the demo do) ranks every validation user's top 10 under each cap of :data:`CAPS` and
records the one with the best validation NDCG@10 (ties: the tighter cap, the more diverse
list) as ``fit_info["diversity"]``. Its write-back stores lists cut with that cap, and the API
uses it as the default ``max_per_artist`` of the run (``docs/api.md``).

A capped list is the model's ranking read in score order, skipping a song whose artist already
has N songs in it (a song without an artist is never skipped): the same cut as
``api.services.recommendations.cap_per_artist``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gnn.core._metrics import ndcg_at_k
from gnn.core._recommender import Recommender
from gnn.graph._data import TrainData
from gnn.graph._snapshot import GraphSnapshot

#: The caps a run chooses among (None: no cap).
CAPS: tuple[int | None, ...] = (None, 3, 2, 1)


def song_artists(snap: GraphSnapshot) -> np.ndarray:
    """The artist index of each song (-1: none; a song with several: the last listed)."""
    out = np.full(snap.num_songs, -1, dtype=np.int64)
    out[np.asarray(snap.song_artist[0], dtype=np.int64)] = np.asarray(snap.song_artist[1])
    return out


def cap_walk(
    items: Iterable[int], artists: Iterable[int], k: int, cap: int, seen: dict[int, int],
    got: list[int],
) -> None:  # fmt: skip
    """Append to ``got``, in order, the ``items`` whose artist (``artists``, parallel) has had
    fewer than ``cap`` songs so far (counted in ``seen``), until ``got`` holds ``k``. An artist
    -1 (none) is never capped. ``seen`` and ``got`` carry over between calls, so a caller can
    walk a ranking in pieces."""
    for item, a in zip(items, artists, strict=True):
        if a >= 0:
            n = seen.get(a, 0)
            if n >= cap:
                continue
            seen[a] = n + 1
        got.append(item)
        if len(got) == k:
            return


def cap_ranked(
    ids: np.ndarray, scores: np.ndarray, artists: np.ndarray, k: int, cap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``k`` of each ranked row with at most ``cap`` songs per artist.

    Shapes:
        ids, scores: [n, m] ranked rows (id -1: none) -> ids int64 [n, k], scores float32
        [n, k] padded with -1 / -inf, and short bool [n]: the row ran out before ``k``.
    """
    n = len(ids)
    out_ids = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), -np.inf, dtype=np.float32)
    short = np.zeros(n, dtype=bool)
    for row in range(n):
        row_ids = ids[row]
        valid = np.flatnonzero((row_ids >= 0) & np.isfinite(scores[row]))
        got: list[int] = []
        cap_walk(valid.tolist(), artists[row_ids[valid]].tolist(), k, cap, {}, got)
        out_ids[row, : len(got)] = row_ids[got]
        out_scores[row, : len(got)] = scores[row][got]
        short[row] = len(got) < k
    return out_ids, out_scores, short


def capped_recommend(
    rec: Recommender, users: np.ndarray, k: int, observed: TrainData, cap: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``rec.recommend(users, k, observed)`` with at most ``cap`` songs per artist: the top
    ``max(10k, 100)`` are cut, and a user they leave short of ``k`` is ranked over the whole
    catalogue (so a list is short only when the catalogue is)."""
    if cap is None:
        return rec.recommend(users, k, observed)
    return capped_lists(rec, users, k, observed, (cap,))[cap]


def capped_lists(
    rec: Recommender,
    users: np.ndarray,
    k: int,
    observed: TrainData,
    caps: Iterable[int | None],
) -> dict[int | None, tuple[np.ndarray, np.ndarray]]:
    """:func:`capped_recommend` under each of ``caps``, from one ranking of the users' top
    ``max(10k, 100)`` (the model scores every user once, not once per cap). The lists are
    those :func:`capped_recommend` gives: ``top_k`` breaks ties by song index, so a longer
    ranking starts with the shorter one (cap None: its first ``k``)."""
    users = np.asarray(users)
    n_songs = observed.num_songs
    artists = song_artists(observed.snapshot)
    kk = min(max(10 * k, 100), n_songs)
    ranked_ids, ranked_scores = rec.recommend(users, kk, observed)
    out: dict[int | None, tuple[np.ndarray, np.ndarray]] = {}
    for cap in caps:
        if cap is None:
            out[cap] = (ranked_ids[:, :k].copy(), ranked_scores[:, :k].copy())
            continue
        ids, scores, short = cap_ranked(ranked_ids, ranked_scores, artists, k, cap)
        if short.any() and kk < n_songs:
            again, again_scores, _ = cap_ranked(
                *rec.recommend(users[short], n_songs, observed), artists, k, cap
            )
            ids[short], scores[short] = again, again_scores
        out[cap] = ids, scores
    return out


def choose_cap(
    rec: Recommender,
    observed: TrainData,
    relevant: list[np.ndarray],
    *,
    k: int = 10,
    caps: tuple[int | None, ...] = CAPS,
) -> dict[str, Any]:
    """Validation NDCG@``k`` of ``rec``'s lists under each cap, and the best cap.

    Args:
        observed: the validation period's observed view (history excluded from the lists).
        relevant: validation songs per user (users without one are skipped).

    Returns:
        ``{"max_per_artist": best cap or None, "ndcg@10": {"none": ..., "3": ...},
        "users": n}``.
    """
    users = np.array([u for u, r in enumerate(relevant) if len(r)], dtype=np.int64)
    if len(users) == 0:
        return {"max_per_artist": None, f"ndcg@{k}": {}, "users": 0}
    rel = [relevant[u] for u in users]
    lists = capped_lists(rec, users, k, observed, caps)
    scores = {cap: float(np.mean(ndcg_at_k(lists[cap][0], rel, k))) for cap in caps}
    # best first; among equal figures the tighter cap (None counts as the loosest)
    best = max(caps, key=lambda c: (scores[c], -(c if c is not None else 10**9)))
    return {
        "max_per_artist": best,
        f"ndcg@{k}": {("none" if c is None else str(c)): v for c, v in scores.items()},
        "users": int(len(users)),
    }
