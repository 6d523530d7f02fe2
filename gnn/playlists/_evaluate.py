"""The RecSys Challenge 2018 metrics over continuation cases: R-precision, NDCG, clicks and
recall@{10,100,500}; the setting is described in :mod:`gnn.playlists._data`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from gnn.playlists._data import Cases, RankFn

log = logging.getLogger(__name__)


#: Tracks ranked per case, as in the challenge.
LIST_LENGTH = 500


RECALL_AT: tuple[int, ...] = (10, 100, 500)


#: The cut-off of the top-of-list NDCG (``ndcg@10``), the figure a 10-track answer is judged by.
NDCG_AT = 10


METRICS: tuple[str, ...] = (
    "r_precision",
    "ndcg",
    "clicks",
    *(f"recall@{n}" for n in RECALL_AT),
    f"ndcg@{NDCG_AT}",
)


def case_metrics(recs: np.ndarray, targets: np.ndarray, song_artist: np.ndarray) -> np.ndarray:
    """The metrics of one case, in the order of ``METRICS``.

    Args:
        recs: int [n] ranked song indices, best first (``-1`` pads and never counts).
        targets: the held-out song indices (distinct, non-empty).
        song_artist: int [S] primary artist per song, ``-1`` for none.
    """
    recs = np.asarray(recs, dtype=np.int64)
    g = np.asarray(targets, dtype=np.int64)
    if len(g) == 0:
        raise ValueError("a case needs at least one held-out track")
    hit = np.isin(recs, g) & (recs >= 0)
    top = recs[: len(g)]
    top_hit = hit[: len(g)]
    wrong = top[~top_hit & (top >= 0)]
    wrong_artists = np.unique(song_artist[wrong]) if len(wrong) else np.zeros(0, np.int64)
    target_artists = np.unique(song_artist[g])
    artist_credit = np.isin(wrong_artists[wrong_artists >= 0], target_artists).sum()
    r_prec = (top_hit.sum() + 0.25 * artist_credit) / len(g)
    n_hit = int(hit.sum())
    if n_hit:
        ranks = np.arange(1, len(recs) + 1, dtype=np.float64)
        disc = 1.0 / np.log2(np.maximum(ranks, 2.0))  # rank 1 and 2 both weigh 1
        ndcg = float(disc[hit].sum() / disc[:n_hit].sum())
        clicks = float(int(np.argmax(hit)) // 10)
    else:
        ndcg, clicks = 0.0, 51.0
    recall = [hit[:n].sum() / len(g) for n in RECALL_AT]
    top_disc = 1.0 / np.log2(np.arange(2, NDCG_AT + 2, dtype=np.float64))
    gain = hit[:NDCG_AT]
    ndcg_at = float(top_disc[: len(gain)][gain].sum() / top_disc[: min(len(g), NDCG_AT)].sum())
    return np.array([r_prec, ndcg, clicks, *recall, ndcg_at], dtype=np.float64)


def evaluate_cases(
    rank: RankFn,
    cases: Cases,
    song_artist: np.ndarray,
    *,
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Score ranked lists per case, then average per bucket and over all cases.

    Args:
        rank: ``rank(seeds, names) -> int [B, n]`` ranked song indices per case (seeds
            excluded, ``-1`` padding), e.g. ``PlaylistModel.rank``.

    Returns:
        ``{"overall": {metric: mean, "n_cases": n}, "buckets": {"0": {...}, "1": ...}}``;
        buckets without cases are left out.
    """
    n = len(cases)
    values = np.zeros((n, len(METRICS)), dtype=np.float64)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        recs = rank(cases.seeds[start:stop], cases.names[start:stop])
        for i in range(start, stop):
            values[i] = case_metrics(recs[i - start], cases.targets[i], song_artist)
        if progress:
            progress(stop, n)

    def summary(mask: np.ndarray) -> dict[str, float]:
        out = {m: float(values[mask, j].mean()) for j, m in enumerate(METRICS)}
        out["n_cases"] = int(mask.sum())
        return out

    result: dict[str, object] = {
        "overall": summary(np.ones(n, dtype=bool)) if n else {"n_cases": 0},
        "buckets": {str(k): summary(cases.k == k) for k in np.unique(cases.k).tolist()},
    }
    return result


def flatten_metrics(result: dict[str, object], prefix: str = "") -> dict[str, float]:
    """``{"r_precision": .., "k5/r_precision": ..}`` from :func:`evaluate_cases`' result."""
    out: dict[str, float] = {}
    overall = result.get("overall") or {}
    assert isinstance(overall, dict)
    for key, v in overall.items():
        out[f"{prefix}{key}"] = v
    buckets = result.get("buckets") or {}
    assert isinstance(buckets, dict)
    for k, row in buckets.items():
        for key, v in row.items():
            out[f"{prefix}k{k}/{key}"] = v
    return out
