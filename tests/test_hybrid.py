"""The taste hybrid (issue 18, user task): an exactly explainable sum of item-item, artist,
genre and popularity terms whose weights are fitted on validation.

Its explanations are its score: the parts per played song must sum to it, term by term; the
weight fit must be deterministic and read the validation period only; the selection serves it
only when it wins on validation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gnn.graph._data import random_snapshot
from gnn.users import (
    EASE,
    RP3beta,
    TasteHybrid,
    foldable,
    load_trained,
    prepare,
    recommend_and_explain,
    train_and_select,
    train_model,
)
from gnn.users._hybrid import TERMS


@pytest.fixture(scope="module")
def exp():
    return prepare(
        random_snapshot(
            num_users=60, num_songs=150, num_artists=12, num_genres=4, plays_per_user=40, seed=3
        )
    )


@pytest.fixture(scope="module")
def fitted(exp):
    rec = TasteHybrid()
    info = rec.fit(exp.train, val=(exp.train, exp.val_relevant))
    return rec, info


def test_score_is_the_sum_of_its_parts(exp, fitted) -> None:
    rec, info = fitted
    assert set(info["weights"]) == set(TERMS) and info["weights"]["ease"] == 1.0
    assert info["fit_users"] > 0
    observed = exp.full()
    users = np.arange(8)
    scores = rec.score(users, observed)
    for u in users:
        hist, parts = rec.contributions(int(u), np.arange(observed.num_songs), observed)
        assert len(hist) == len(set(hist.tolist())) > 0
        np.testing.assert_allclose(parts.sum(axis=0), scores[u], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("term", [t for t in TERMS if t != "ease"])
def test_each_term_alone_is_the_sum_of_its_parts(exp, fitted, term: str) -> None:
    """One term at a time (the others weighted 0): a wrong part in any term fails here, even
    where the fitted weights would let errors cancel."""
    base, _ = fitted
    rec = TasteHybrid(weights={"ease": 0.0, term: 1.0})
    rec.adopt({"ease": base.ease, "rp3beta": base.rp3}, {})
    rec.fit(exp.train)
    observed = exp.full()
    scores = rec.score(np.arange(5), observed)
    assert np.abs(scores).max() > 0, f"{term} is identically 0"
    for u in range(5):
        _, parts = rec.contributions(u, np.arange(observed.num_songs), observed)
        np.testing.assert_allclose(parts.sum(axis=0), scores[u], rtol=1e-5, atol=1e-6)


def test_artist_term_is_the_users_play_share_of_the_songs_artist(exp, fitted) -> None:
    base, _ = fitted
    rec = TasteHybrid(weights={"ease": 0.0, "artist": 1.0})
    rec.adopt({"ease": base.ease, "rp3beta": base.rp3}, {})
    rec.fit(exp.train)
    snap = exp.snap
    artist = np.full(snap.num_songs, -1)
    artist[snap.song_artist[0]] = snap.song_artist[1]
    row = exp.train.matrix[4].toarray().ravel()
    expected = np.array([row[artist == artist[i]].sum() for i in range(snap.num_songs)]) / row.sum()
    np.testing.assert_allclose(rec.score(np.array([4]), exp.train)[0], expected, rtol=1e-5)


def test_the_weight_fit_is_deterministic(exp, fitted) -> None:
    _, info = fitted
    again = TasteHybrid()
    info2 = again.fit(exp.train, val=(exp.train, exp.val_relevant))
    assert info2["weights"] == info["weights"]
    users = np.arange(exp.snap.num_users)
    np.testing.assert_array_equal(again.score(users, exp.train), fitted[0].score(users, exp.train))


def test_the_weights_read_validation_only(exp, fitted) -> None:
    """Changing which songs the test period holds changes nothing the hybrid learns."""
    snap = exp.snap
    test = exp.split.test
    rng = np.random.default_rng(0)
    song = snap.play_song.copy()
    song[test] = rng.integers(0, snap.num_songs, int(test.sum()))
    other = prepare(dataclasses.replace(snap, play_song=song))
    np.testing.assert_array_equal(other.split.test, test)
    assert (other.snap.play_song[test] != snap.play_song[test]).any()
    rec = TasteHybrid()
    info = rec.fit(other.train, val=(other.train, other.val_relevant))
    assert info["weights"] == fitted[1]["weights"]


def test_fit_needs_validation_or_fixed_weights(exp) -> None:
    with pytest.raises(ValueError, match="validation"):
        TasteHybrid().fit(exp.train)
    with pytest.raises(ValueError, match="unknown terms"):
        TasteHybrid(weights={"tempo": 1.0})


def test_selection_adopts_the_fitted_parts_and_serves_by_validation(exp, tmp_path: Path) -> None:
    sel = train_and_select(exp, ["ease", "rp3beta", "hybrid"], runs_root=tmp_path)
    hybrid = sel.results["hybrid"].recommender
    assert isinstance(hybrid, TasteHybrid)
    assert hybrid.ease is sel.results["ease"].recommender  # reused, not refitted
    assert hybrid.rp3 is sel.results["rp3beta"].recommender
    info = sel.results["hybrid"].fit_info
    assert info["reused_train_seconds"] == pytest.approx(
        sel.results["ease"].seconds + sel.results["rp3beta"].seconds
    )
    val = {n: r.val_metrics["ndcg@10"] for n, r in sel.results.items()}
    assert sel.selection["best"] == max(val, key=val.get)


def test_a_recorded_run_is_rebuilt_with_its_weights(exp, tmp_path: Path) -> None:
    """Serving refits from the run's recorded choices (weights, EASE^R's l2, RP3beta's alpha
    and beta), not from a new search, and scores exactly as the trained model did."""
    res = train_model(exp, "hybrid", runs_root=tmp_path, activate=False, validate=True)
    rebuilt, _ = load_trained(res.run)
    assert isinstance(rebuilt, TasteHybrid) and rebuilt.fixed is not None
    assert isinstance(rebuilt.ease, EASE) and rebuilt.ease.l2_grid == [res.fit_info["ease_l2"]]
    assert isinstance(rebuilt.rp3, RP3beta)
    users = np.arange(exp.snap.num_users)
    np.testing.assert_allclose(
        rebuilt.score(users, exp.train), res.recommender.score(users, exp.train), rtol=1e-5
    )


def test_explanations_are_exact_and_it_folds_in(exp, fitted) -> None:
    rec, _ = fitted
    assert foldable(rec)
    observed = exp.full()
    out = recommend_and_explain(rec, observed, np.arange(4), k=5)
    assert out.method == "exact"
    for n, u in enumerate(out.users):
        hist, parts = rec.contributions(int(u), out.songs[n], observed)
        np.testing.assert_allclose(parts.sum(axis=0), out.scores[n], rtol=1e-5, atol=1e-5)
        for col, pair in enumerate(out.explanations[n]):
            assert pair.played[0] == hist[int(np.argmax(parts[:, col]))]
            weights = [a.weight for a in pair.evidence]
            assert weights == sorted(weights, reverse=True)
            assert all(
                w == pytest.approx(parts[hist == a.node, col][0])
                for a, w in zip(pair.evidence, weights, strict=True)
            )
