"""Ranking and beyond-accuracy metrics over top-K lists; pure numpy, vectorised over users.

Conventions (every function):
    * ``recs`` is an int array [n, K] of song indices, best first, as returned by
      ``Recommender.recommend``; ``-1`` pads a list that had fewer than K candidates and never
      counts as a hit, a distinct song or a member of a list.
    * ``relevant`` is a sequence of n int arrays: the songs each user played in the target period
      and never before (binary relevance).
    * Per-user accuracy metrics return float64 [n] with NaN for users with no relevant song (the
      metric is undefined for them); aggregate with ``np.nanmean`` or drop those users first, as
      the harness does.

Definitions at cut-off k (hits h_i = 1 if the song at rank i is relevant, ranks from 1):
    Recall@k    sum_{i<=k} h_i / |rel|        (denominator |rel|, not min(k, |rel|))
    NDCG@k      DCG / IDCG, DCG = sum_{i<=k} h_i / log2(i + 1),
                IDCG = sum_{i<=min(k, |rel|)} 1 / log2(i + 1)
    HitRate@k   1 if any h_i = 1 for i <= k, else 0
    MRR@k       1 / (rank of the first relevant song) if it is within the top k, else 0; the
                ranking is the full ranking over candidates truncated at k (no untruncated MRR:
                it would need the full ranking of every catalogue song).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_recs(recs: np.ndarray) -> np.ndarray:
    arr = np.asarray(recs)
    if arr.ndim != 2:
        raise ValueError(f"recs must be a 2-D [users, K] array (got shape {arr.shape})")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"recs must hold integer song indices (got dtype {arr.dtype})")
    return arr.astype(np.int64, copy=False)


def _check_k(k: int, width: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= width:
        raise ValueError(f"k must be an integer 1..{width} (the list length) (got {k!r})")
    return int(k)


def _check_relevant(relevant: Sequence[np.ndarray], n: int) -> None:
    if len(relevant) != n:
        raise ValueError(f"relevant must have one entry per user: {n} (got {len(relevant)})")


def relevant_counts(relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Number of distinct relevant songs per user, int64 [n]."""
    return np.array([len(np.unique(r)) for r in relevant], dtype=np.int64)


def hits_matrix(recs: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Whether each recommended song is relevant to its user.

    Shapes:
        recs: int [n, K], relevant: n arrays -> bool [n, K]
    """
    recs = _as_recs(recs)
    n, width = recs.shape
    _check_relevant(relevant, n)
    if n == 0 or width == 0:
        return np.zeros((n, width), dtype=bool)
    lens = np.array([len(r) for r in relevant], dtype=np.int64)
    rel_songs = (
        np.concatenate([np.asarray(r, dtype=np.int64).ravel() for r in relevant])
        if lens.sum()
        else np.zeros(0, dtype=np.int64)
    )
    if rel_songs.size and rel_songs.min() < 0:
        raise ValueError(f"relevant song indices must be >= 0 (got {int(rel_songs.min())})")
    span = int(max(recs.max(initial=0), rel_songs.max(initial=0))) + 1
    rel_keys = np.repeat(np.arange(n, dtype=np.int64), lens) * span + rel_songs
    rec_keys = np.arange(n, dtype=np.int64)[:, None] * span + recs
    return np.isin(rec_keys, rel_keys) & (recs >= 0)


def _per_user(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64)
    out[n_rel == 0] = np.nan
    return out


def recall_at_k(recs: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Recall@k per user: relevant songs in the top k over all relevant songs.

    Shapes:
        recs: int [n, K], relevant: n arrays -> float64 [n] (NaN where no relevant song)
    """
    recs = _as_recs(recs)
    k = _check_k(k, recs.shape[1])
    hits = hits_matrix(recs, relevant)[:, :k]
    n_rel = relevant_counts(relevant)
    return _per_user(hits.sum(axis=1) / np.maximum(n_rel, 1), n_rel)


def ndcg_at_k(recs: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> np.ndarray:
    """NDCG@k per user with binary relevance; the ideal list has min(k, |rel|) hits on top.

    Shapes:
        recs: int [n, K], relevant: n arrays -> float64 [n] (NaN where no relevant song)
    """
    recs = _as_recs(recs)
    k = _check_k(k, recs.shape[1])
    hits = hits_matrix(recs, relevant)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = hits @ discounts
    n_rel = relevant_counts(relevant)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_rel, k)]
    return _per_user(dcg / np.where(ideal > 0, ideal, 1.0), n_rel)


def hit_rate_at_k(recs: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> np.ndarray:
    """HitRate@k per user: 1 if any of the top k is relevant, else 0.

    Shapes:
        recs: int [n, K], relevant: n arrays -> float64 [n] (NaN where no relevant song)
    """
    recs = _as_recs(recs)
    k = _check_k(k, recs.shape[1])
    hits = hits_matrix(recs, relevant)[:, :k]
    return _per_user(np.asarray(hits.any(axis=1)), relevant_counts(relevant))


def mrr_at_k(recs: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> np.ndarray:
    """MRR@k per user: 1 / rank of the first relevant song if within the top k, else 0.

    Shapes:
        recs: int [n, K], relevant: n arrays -> float64 [n] (NaN where no relevant song)
    """
    recs = _as_recs(recs)
    k = _check_k(k, recs.shape[1])
    hits = hits_matrix(recs, relevant)[:, :k]
    first = hits.argmax(axis=1)
    rr = np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)
    return _per_user(rr, relevant_counts(relevant))


def catalogue_coverage(recs: np.ndarray, num_songs: int, k: int | None = None) -> float:
    """Distinct songs recommended in any top-k list over the catalogue size.

    Shapes:
        recs: int [n, K] -> float in [0, 1]
    """
    recs = _as_recs(recs)
    if num_songs < 1:
        raise ValueError(f"num_songs must be >= 1 (got {num_songs})")
    if k is not None:
        recs = recs[:, : _check_k(k, recs.shape[1])]
    songs = np.unique(recs[recs >= 0])
    if songs.size and songs.max() >= num_songs:
        raise ValueError(f"song index must be 0..{num_songs - 1} (got {int(songs.max())})")
    return float(songs.size / num_songs)


def intra_list_diversity(
    recs: np.ndarray, item_features: np.ndarray, k: int | None = None, chunk: int = 4096
) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cos) between the songs of each top-k list.

    ``item_features`` are typically the songs' genre vectors. A song with an all-zero vector
    has cosine 0 to every song (distance 1). Padding ids (-1) are left out of the pairs.

    Shapes:
        recs: int [n, K], item_features: float [S, F] -> float64 [n] (NaN for lists with
        fewer than two songs)
    """
    recs = _as_recs(recs)
    if k is not None:
        recs = recs[:, : _check_k(k, recs.shape[1])]
    feats = np.asarray(item_features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"item_features must be 2-D [songs, F] (got shape {feats.shape})")
    if recs.size and recs.max() >= feats.shape[0]:
        raise ValueError(f"song index must be 0..{feats.shape[0] - 1} (got {int(recs.max())})")
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    unit = np.divide(feats, norms, out=np.zeros_like(feats), where=norms > 0)
    unit = np.vstack([unit, np.zeros((1, unit.shape[1]))])  # row -1 -> zero vector
    out = np.empty(recs.shape[0], dtype=np.float64)
    for start in range(0, recs.shape[0], chunk):
        block = recs[start : start + chunk]
        v = unit[block]  # [b, K, F]
        sims = np.einsum("bkf,bjf->bkj", v, v)
        diag = np.einsum("bkk->b", sims)
        n_valid = (block >= 0).sum(axis=1)
        pairs = n_valid * (n_valid - 1)
        sim_sum = sims.sum(axis=(1, 2)) - diag
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = np.where(pairs > 0, 1.0 - sim_sum / pairs, np.nan)
    return out


def novelty(
    recs: np.ndarray, popularity: np.ndarray, k: int | None = None, smoothing: float = 1.0
) -> np.ndarray:
    """Mean self-information ``-log2 p(song)`` of each top-k list, in bits.

    ``p(song) = (count + smoothing) / (sum(counts) + smoothing * S)``: the song's share of the
    observed plays, add-``smoothing`` so that never-played songs have finite novelty.

    Args:
        popularity: observed play counts per song (e.g. column sums of the observed matrix).
        smoothing: pseudo-count per song (default 1.0; 0 gives the raw share).

    Shapes:
        recs: int [n, K], popularity: [S] -> float64 [n] (NaN for empty lists)
    """
    recs = _as_recs(recs)
    if k is not None:
        recs = recs[:, : _check_k(k, recs.shape[1])]
    pop = np.asarray(popularity, dtype=np.float64).ravel()
    if smoothing < 0 or (pop < 0).any():
        raise ValueError(f"counts and smoothing must be >= 0 (got smoothing={smoothing})")
    if recs.size and recs.max() >= pop.size:
        raise ValueError(f"song index must be 0..{pop.size - 1} (got {int(recs.max())})")
    total = pop.sum() + smoothing * pop.size
    if total <= 0:
        raise ValueError("popularity is all zero and smoothing is 0: novelty is undefined")
    with np.errstate(divide="ignore"):
        info = -np.log2((pop + smoothing) / total)
    info = np.append(info, 0.0)  # index -1 -> padding
    valid = recs >= 0
    n_valid = valid.sum(axis=1)
    total_info = np.where(valid, info[recs], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_valid > 0, total_info / np.maximum(n_valid, 1), np.nan)
