"""Ranking and beyond-accuracy metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnn.core._metrics import (
    catalogue_coverage,
    hit_rate_at_k,
    hits_matrix,
    intra_list_diversity,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    recall_at_k,
)

L2 = math.log2


def test_single_relevant_item_at_rank_two():
    recs = np.array([[3, 1, 2]])
    rel = [np.array([1])]
    assert ndcg_at_k(recs, rel, 2)[0] == pytest.approx(1 / L2(3))
    assert ndcg_at_k(recs, rel, 1)[0] == 0.0
    assert recall_at_k(recs, rel, 2)[0] == 1.0
    assert recall_at_k(recs, rel, 1)[0] == 0.0
    assert hit_rate_at_k(recs, rel, 2)[0] == 1.0
    assert hit_rate_at_k(recs, rel, 1)[0] == 0.0
    assert mrr_at_k(recs, rel, 3)[0] == 0.5
    assert mrr_at_k(recs, rel, 1)[0] == 0.0


def test_two_relevant_items():
    recs = np.array([[3, 1, 2]])
    rel = [np.array([2, 1])]
    dcg = 1 / L2(3) + 1 / L2(4)
    idcg = 1 + 1 / L2(3)
    assert ndcg_at_k(recs, rel, 3)[0] == pytest.approx(dcg / idcg)
    assert recall_at_k(recs, rel, 2)[0] == 0.5
    assert recall_at_k(recs, rel, 3)[0] == 1.0


def test_ideal_dcg_uses_min_of_k_and_relevant_count():
    recs = np.array([[5, 9]])
    rel = [np.array([5, 6, 7, 8])]
    assert ndcg_at_k(recs, rel, 2)[0] == pytest.approx(1 / (1 + 1 / L2(3)))
    assert recall_at_k(recs, rel, 2)[0] == 0.25


def test_perfect_ranking_scores_one_and_vectorised_rows_are_independent():
    recs = np.array([[1, 2, 0], [0, 4, 3], [7, 8, 9]])
    rel = [np.array([1, 2]), np.array([3]), np.array([], dtype=np.int64)]
    nd = ndcg_at_k(recs, rel, 3)
    assert nd[0] == pytest.approx(1.0)
    assert nd[1] == pytest.approx(1 / L2(4))
    assert np.isnan(nd[2])  # undefined without relevant songs
    assert mrr_at_k(recs, rel, 3)[:2] == pytest.approx([1.0, 1 / 3])


def test_padding_never_hits():
    recs = np.array([[2, -1, -1]])
    rel = [np.array([0, 2])]
    assert hits_matrix(recs, rel).tolist() == [[True, False, False]]
    assert recall_at_k(recs, rel, 3)[0] == 0.5


def test_bad_k_is_named():
    with pytest.raises(ValueError, match=r"got 4"):
        recall_at_k(np.array([[1, 2, 3]]), [np.array([1])], 4)
    with pytest.raises(ValueError, match=r"got 0"):
        ndcg_at_k(np.array([[1, 2, 3]]), [np.array([1])], 0)
    with pytest.raises(ValueError, match="one entry per user"):
        recall_at_k(np.array([[1, 2, 3]]), [], 1)


def test_coverage():
    recs = np.array([[0, 1], [1, 2], [2, -1]])
    assert catalogue_coverage(recs, 10) == pytest.approx(0.3)
    assert catalogue_coverage(recs, 10, k=1) == pytest.approx(0.3)
    assert catalogue_coverage(recs[:2], 10, k=1) == pytest.approx(0.2)


def test_intra_list_diversity():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    d = 1 - 1 / math.sqrt(2)
    out = intra_list_diversity(
        np.array([[0, 1, -1], [0, 2, -1], [0, 1, 2], [0, -1, -1], [0, 3, -1]]), feats
    )
    assert out[:3] == pytest.approx([1.0, d, (1 + 2 * d) / 3])
    assert np.isnan(out[3])
    assert out[4] == pytest.approx(1.0)  # a zero genre vector is dissimilar to everything
    assert intra_list_diversity(np.array([[0, 0]]), feats)[0] == pytest.approx(0.0)


def test_novelty():
    pop = np.array([2.0, 1.0, 1.0, 0.0])
    recs = np.array([[0, 1], [2, -1]])
    assert novelty(recs, pop, smoothing=0.0) == pytest.approx([1.5, 2.0])
    smoothed = novelty(np.array([[3]]), pop, smoothing=1.0)
    assert smoothed[0] == pytest.approx(3.0)  # (0 + 1) / (4 + 4)
    assert np.isnan(novelty(np.array([[-1]]), pop)[0])
