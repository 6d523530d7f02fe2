"""Baselines behind the Recommender interface, on tiny graphs with a known right answer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from gnn.core._linalg import spd_inverse
from gnn.core._recommender import Recommender, top_k
from gnn.graph._data import build_train_data, random_snapshot, relevant_items, temporal_split
from gnn.graph._snapshot import GraphSnapshot
from gnn.users._baselines import EASE, ItemKNN, Oracle, Popularity, _prune_rows
from spotify_engine.errors import FitFailed, ModelError, NotFittedError


def snapshot_from_plays(
    users: np.ndarray, songs: np.ndarray, num_users: int, num_songs: int
) -> GraphSnapshot:
    """A snapshot whose plays are (users[i], songs[i]) in this order of time per user."""
    base = random_snapshot(num_users=num_users, num_songs=num_songs, plays_per_user=1)
    n = len(users)
    return dataclasses.replace(
        base,
        play_user=np.asarray(users, dtype=np.int64),
        play_song=np.asarray(songs, dtype=np.int64),
        play_ts=np.arange(n, dtype=np.int64) * 1000,
        play_ms=np.full(n, 180_000, dtype=np.int64),
        play_session=np.asarray(users, dtype=np.int64),
        play_skipped=np.zeros(n, dtype=bool),
    )


def two_communities(seed: int = 0) -> GraphSnapshot:
    """Users 0-9 play only songs 0-24, users 10-19 only songs 25-49.

    Each user plays 14 distinct songs of their community in 20 plays (6 replayed early), so
    the last 6 plays (validation and test periods) are all new songs.
    """
    rng = np.random.default_rng(seed)
    users, songs = [], []
    for u in range(20):
        lo = 0 if u < 10 else 25
        picks = rng.choice(np.arange(lo, lo + 25), size=14, replace=False)
        picks = np.concatenate([picks[:6], picks[:6], picks[6:]])
        users += [u] * len(picks)
        songs += picks.tolist()
    return snapshot_from_plays(np.array(users), np.array(songs), 20, 50)


def checkerboard(n: int = 50) -> GraphSnapshot:
    """Even users played every even song, odd users every odd song; the diagonal comes last.

    With one test play per user (the diagonal), the held-back song is the only unplayed song
    of the user's parity, so it must be recommended first (implicit's checkerboard test).
    """
    users, songs = [], []
    for u in range(n):
        liked = [s for s in range(u % 2, n, 2) if s != u]
        users += [u] * (len(liked) + 1)
        songs += liked + [u]
    return snapshot_from_plays(np.array(users), np.array(songs), n, n)


def checker_prefs(n: int = 50) -> np.ndarray:
    i = np.arange(n)
    return ((i[:, None] + i[None, :]) % 2 == 0).astype(np.float32)


MODELS = {
    "popularity": lambda snap: Popularity(),
    "popularity_observed": lambda snap: Popularity(source="observed", by="users"),
    "itemknn": lambda snap: ItemKNN(neighbours=10),
    "itemknn_log_shrunk": lambda snap: ItemKNN(neighbours=0, shrinkage=5.0, weighting="log"),
    "ease": lambda snap: EASE(l2=(10.0, 100.0)),
    "oracle": lambda snap: Oracle(
        np.random.default_rng(1).random((snap.num_users, snap.num_songs))
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_shapes_order_and_exclusion(name):
    snap = random_snapshot(num_users=12, num_songs=40, plays_per_user=15, seed=3)
    split = temporal_split(snap)
    train = build_train_data(snap, split.train)
    observed = build_train_data(snap, split.observed_for("test"))
    model = MODELS[name](snap)
    info = model.fit(train, val=(train, relevant_items(snap, split, "val")))
    assert isinstance(info, dict)
    users = np.array([0, 5, 11, 5])
    ids, scores = model.recommend(users, 7, observed, batch_size=3)
    assert ids.shape == scores.shape == (4, 7)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert (np.diff(scores, axis=1) <= 0).all()
    for row, u in zip(ids, users, strict=True):
        assert len(set(row.tolist())) == 7
        played = set(observed.matrix[u].indices.tolist())
        assert not played & set(row.tolist())
    np.testing.assert_array_equal(ids[1], ids[3])
    # EASE learns one item-item weight matrix over the songs seen in training; the others
    # count nothing as learned parameters.
    expected = len(model.items_) ** 2 if name == "ease" else 0
    assert model.num_parameters() == expected
    assert expected > 0 or name != "ease"


def test_candidates_mask_restricts_and_k_is_validated():
    snap = random_snapshot(seed=2)
    train = build_train_data(snap, temporal_split(snap).train)
    model = Popularity()
    model.fit(train)
    allowed = np.zeros(snap.num_songs, dtype=bool)
    allowed[:10] = True
    ids, scores = model.recommend(np.arange(4), 10, train, candidates_mask=allowed)
    assert ((ids < 10) | (ids == -1)).all()
    assert np.isneginf(scores[ids == -1]).all()  # fewer than k candidates: padded
    with pytest.raises(ValueError, match=r"got 0"):
        model.recommend(np.arange(2), 0, train)
    with pytest.raises(ValueError, match=r"got 51"):
        model.recommend(np.arange(2), snap.num_songs + 1, train)
    with pytest.raises(ValueError, match=r"got 20"):
        model.recommend(np.array([20]), 5, train)
    with pytest.raises(ValueError, match="candidates_mask"):
        model.recommend(np.arange(2), 5, train, candidates_mask=np.ones(3, dtype=bool))


def test_popularity_ranks_by_play_counts():
    snap = snapshot_from_plays(np.array([0, 0, 0, 1, 1, 2]), np.array([4, 4, 2, 4, 2, 3]), 3, 6)
    data = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    model = Popularity()
    model.fit(data)
    ids, _ = model.recommend(np.array([2]), 3, data)
    assert ids[0].tolist() == [4, 2, 0]  # song 3 is observed; ties go to the lower index


class _Broken(Recommender):
    name = "broken"

    def __init__(self, out):
        self.out = out

    def score(self, users, observed):
        return self.out(len(users), observed.num_songs)


def test_nan_scores_and_wrong_shapes_raise_model_error():
    snap = random_snapshot()
    data = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    with pytest.raises(ModelError, match="NaN"):
        _Broken(lambda n, s: np.full((n, s), np.nan)).recommend(np.arange(3), 5, data)
    with pytest.raises(ModelError, match="shape"):
        _Broken(lambda n, s: np.zeros((n, s - 1))).recommend(np.arange(3), 5, data)
    with pytest.raises(NotFittedError):
        EASE().recommend(np.arange(3), 5, data)
    assert issubclass(ModelError, ValueError)


@pytest.mark.parametrize("model", [ItemKNN(neighbours=20), EASE(l2=50.0)], ids=["knn", "ease"])
def test_two_communities_get_their_own_songs(model):
    snap = two_communities()
    split = temporal_split(snap)
    model.fit(build_train_data(snap, split.train))
    observed = build_train_data(snap, split.observed_for("test"))
    users = np.arange(20)
    ids, _ = model.recommend(users, 5, observed)
    own = np.where(users[:, None] < 10, ids < 25, ids >= 25)
    assert own.mean() >= 0.9


@pytest.mark.parametrize(
    "make",
    [lambda: ItemKNN(neighbours=0), lambda: EASE(l2=1.0), lambda: Oracle(checker_prefs())],
    ids=["knn", "ease", "oracle"],
)
def test_checkerboard_held_back_song_is_recommended_first(make):
    snap = checkerboard()
    split = temporal_split(snap, test_frac=0.05, val_frac=0.0)
    assert split.test.sum() == snap.num_users
    model = make()
    model.fit(build_train_data(snap, split.train))
    observed = build_train_data(snap, split.observed_for("test"))
    ids, _ = model.recommend(np.arange(snap.num_users), 1, observed)
    np.testing.assert_array_equal(ids[:, 0], np.arange(snap.num_users))


def test_ease_tunes_l2_on_validation_and_counts_parameters():
    snap = two_communities(seed=4)
    split = temporal_split(snap)
    train = build_train_data(snap, split.train)
    model = EASE(l2=(1.0, 10.0, 1000.0), metric="recall@5")
    info = model.fit(train, val=(train, relevant_items(snap, split, "val")))
    assert set(info["val"]) == {"1.0", "10.0", "1000.0"}
    assert all(np.isfinite(v) for v in info["val"].values())
    assert info["val"][str(info["l2"])] == max(info["val"].values())
    m = info["num_items"]
    assert model.num_parameters() == m * m
    with pytest.raises(ValueError, match="l2"):
        EASE(l2=0.0)


def test_ease_tune_items_tunes_on_the_most_listened_songs_then_fits_every_song():
    """``tune_items``: the grid is scored by EASE^R models of the most-listened songs only,
    and the chosen ``l`` alone is fitted on every song (the same weights as fitting it
    directly)."""
    from gnn.core._harness import evaluate_view

    snap = random_snapshot(num_users=60, num_songs=80, plays_per_user=20, seed=9)
    split = temporal_split(snap)
    train = build_train_data(snap, split.train)
    val = (train, relevant_items(snap, split, "val"))
    grid = (0.5, 5.0, 50.0, 500.0)
    model = EASE(l2=grid, tune_items=20, dtype="float64")
    info = model.fit(train, val=val)
    assert info["tuned_on_items"] == 20 and info["val"] == {}
    assert set(info["val_tuning"]) == {str(v) for v in grid}
    assert info["val_tuning"][str(info["l2"])] == max(info["val_tuning"].values())
    # each grid value's score is that of an EASE^R on the 20 most-listened songs
    small = EASE(l2=grid[1], max_items=20, dtype="float64")
    small.fit(train)
    expected = evaluate_view(small, train, val[1], (20,), beyond_accuracy=False)["ndcg@20"]
    assert info["val_tuning"][str(grid[1])] == pytest.approx(expected)
    # the model kept is the full one at the chosen l
    full = EASE(l2=info["l2"], dtype="float64")
    full.fit(train)
    assert len(model.items_) == info["num_items"] > 20
    np.testing.assert_array_equal(model.items_, full.items_)
    np.testing.assert_allclose(model.weights_, full.weights_, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="tune_items"):
        EASE(tune_items=0)


def test_ease_weights_match_the_closed_form():
    snap = random_snapshot(num_users=25, num_songs=30, plays_per_user=12, seed=5)
    data = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    model = EASE(l2=3.0, dtype="float64")
    model.fit(data)
    x = (data.matrix[:, model.items_] > 0).toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.weights_, b, rtol=1e-6, atol=1e-9)
    scores = model.score(np.arange(4), data)
    np.testing.assert_allclose(scores[:, model.items_], x[:4] @ b, rtol=1e-4, atol=1e-5)
    f32 = EASE(l2=3.0)
    f32.fit(data)
    np.testing.assert_allclose(f32.weights_, b, atol=1e-4)


def test_itemknn_similarity_is_cosine_with_pruning():
    snap = random_snapshot(num_users=25, num_songs=30, plays_per_user=12, seed=6)
    data = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    model = ItemKNN(neighbours=0, block_size=7)
    model.fit(data)
    x = (data.matrix > 0).toarray().astype(np.float64)
    norms = np.linalg.norm(x, axis=0)
    ref = (x.T @ x) / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), ref, rtol=1e-5, atol=1e-6)
    pruned = ItemKNN(neighbours=3, block_size=7)
    pruned.fit(data)
    sim = pruned.similarity_.toarray()
    assert (np.count_nonzero(sim, axis=1) <= 3).all()
    np.testing.assert_allclose(
        np.sort(sim, axis=1)[:, -3:], np.sort(ref, axis=1)[:, -3:], rtol=1e-5
    )


def _prune_reference(m: sp.csr_matrix, keep: int) -> dict[tuple[int, int], float]:
    """Row by row: the ``keep`` largest entries, ties to the lower column."""
    out = {}
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        cells = sorted(zip(-m.data[lo:hi], m.indices[lo:hi], strict=True))[:keep]
        out.update({(r, int(c)): float(-v) for v, c in cells})
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["distinct", "ties", "signed"])
def test_prune_rows_keeps_the_largest_per_row_ties_to_the_lower_column(dtype, values):
    """Both routes of ``_prune_rows`` (64-bit keys for float32, lexsort otherwise) keep exactly
    the reference's entries, with ties and negative values."""
    rng = np.random.default_rng(7)
    for trial in range(30):
        m = sp.random(
            int(rng.integers(1, 40)), int(rng.integers(1, 60)), density=float(rng.uniform(0.1, 1)),
            format="csr", random_state=trial, dtype=np.float64,
        )  # fmt: skip
        if values == "ties":
            m.data = np.round(m.data * 3) / 3 + 0.1
        elif values == "signed":
            m.data = np.round((m.data - 0.5) * 8) / 4 + 0.01
        m = m.astype(dtype)
        keep = int(rng.integers(1, 8))
        got = _prune_rows(m.copy(), keep).tocoo()
        assert got.dtype == dtype
        pairs = {
            (int(r), int(c)): float(v) for r, c, v in zip(got.row, got.col, got.data, strict=True)
        }
        assert pairs == _prune_reference(m, keep), (trial, keep)


def test_ease_says_which_l2_failed_when_the_gram_is_singular_in_its_dtype() -> None:
    # Two identical songs: X^T X is singular, and 1 + 1e-20 is 1 in float32, so the Cholesky
    # factorisation meets a zero pivot. The error is the project's, with what to do.
    gram = np.ones((2, 2), dtype=np.float32)
    with pytest.raises(FitFailed, match="l2=1e-20") as err:
        EASE(l2=1e-20)._solve(gram, 1e-20)
    assert err.value.hint and "float64" in err.value.hint
    assert isinstance(err.value, ArithmeticError) and isinstance(err.value, ModelError)
    np.testing.assert_allclose(EASE(l2=1.0)._solve(gram, 1.0), [[0, 0.5], [0.5, 0]], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spd_inverse_is_the_inverse_in_both_triangles(dtype: type) -> None:
    rng = np.random.default_rng(3)
    x = rng.random((40, 25))
    a = (x.T @ x + 2.0 * np.eye(25)).astype(dtype)
    want = np.linalg.inv(a.astype(np.float64))
    got = spd_inverse(a.copy(), what="test matrix")
    assert got.dtype == dtype and got.shape == (25, 25)
    assert got.flags.c_contiguous  # x @ B would copy a column-major B at every call
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-7)
    np.testing.assert_array_equal(got, got.T)
    with pytest.raises(FitFailed, match="test matrix is not positive definite"):
        spd_inverse(np.array([[1.0, 2.0], [2.0, 1.0]], dtype=dtype), what="test matrix")


@pytest.mark.parametrize("values", ["distinct", "ties", "infinite", "one_value"])
def test_top_k_is_a_full_sort_with_ties_to_the_lower_index(values):
    """``top_k`` gives, row by row, what a full sort gives (descending score, ties to the lower
    song index, ``-inf`` padded as id -1), whatever the ties and infinities; ``one_value`` is
    a row of one repeated score with a few others and some ``-inf``, which numpy's partition
    was slow on."""
    rng = np.random.default_rng(11)
    for _ in range(40):
        n, s = int(rng.integers(1, 20)), int(rng.integers(2, 80))
        k = int(rng.integers(1, s + 1))
        if values == "distinct":
            x = rng.normal(size=(n, s))
        elif values == "ties":
            x = rng.integers(0, 4, size=(n, s)).astype(float)
        elif values == "infinite":
            x = rng.integers(0, 3, size=(n, s)).astype(float)
            x[rng.random((n, s)) < 0.4] = -np.inf
            x[rng.random((n, s)) < 0.05] = np.inf
        else:
            x = np.zeros((n, s))
            x[rng.random((n, s)) < 0.05] = 1.0
            x[rng.random((n, s)) < 0.2] = -np.inf
        x = x.astype(np.float32)
        ids, top = top_k(x, k)
        for r in range(n):
            order = np.lexsort((np.arange(s), -x[r]))[:k]
            assert ids[r].tolist() == np.where(np.isneginf(x[r, order]), -1, order).tolist()
            assert top[r].tolist() == x[r, order].tolist()
