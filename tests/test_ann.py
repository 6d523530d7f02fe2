"""Approximate nearest neighbours (issue 15, item 5): the HNSW index agrees with the exact
search on clustered vectors, leaves each row out of its own neighbours, and the recall it is
reported with is computed right."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.core import ANNIndex, ann_recall, exact_search


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16))
    return (centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 16))).astype(
        np.float32
    )


def test_recall_counts_shared_ids() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert ann_recall(exact, exact) == 1.0
    assert ann_recall(np.array([[1, 2, 9, 9], [8, 7, 6, 5]]), exact) == pytest.approx(0.75)
    assert ann_recall(np.array([[-1, -1, -1, -1], [0, 0, 0, 0]]), exact) == 0.0


@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_hnsw_matches_the_exact_search(vectors: np.ndarray, metric: str) -> None:
    index = ANNIndex(vectors, metric=metric)
    queries = vectors[:300] + 0.01
    approx, scores = index.search(queries, 10)
    exact, exact_scores = exact_search(vectors, queries, 10, metric=metric)
    assert ann_recall(approx, exact) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-5)  # best first
    np.testing.assert_allclose(scores[:, 0], exact_scores[:, 0], rtol=1e-4, atol=1e-4)
    # a random ranking would recall about 10 / 3000
    shuffled = np.random.default_rng(1).integers(0, len(vectors), approx.shape)
    assert ann_recall(shuffled, exact) < 0.05


def test_neighbours_leave_the_row_itself_out(vectors: np.ndarray) -> None:
    index = ANNIndex(vectors, metric="cosine")
    ids, scores = index.neighbours(5)
    assert ids.shape == (len(vectors), 5) and scores.shape == ids.shape
    assert not (ids == np.arange(len(vectors))[:, None]).any()
    exact, _ = exact_search(vectors, vectors, 6, metric="cosine")
    assert ann_recall(ids[:500], exact[:500, 1:]) >= 0.9


def test_short_catalogue_pads_and_bad_input_is_named() -> None:
    index = ANNIndex(np.eye(3, dtype=np.float32))
    ids, scores = index.search(np.eye(3, dtype=np.float32)[:1], 5)
    assert ids.shape == (1, 5) and (ids[0, 3:] == -1).all() and np.isneginf(scores[0, 3:]).all()
    with pytest.raises(ValueError, match="metric must be one of"):
        ANNIndex(np.eye(3), metric="l1")
    with pytest.raises(ValueError, match=r"2-D \[n, dim\]"):
        ANNIndex(np.zeros(3))
