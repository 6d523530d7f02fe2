"""The gated next-song mixture (issue 18, next song): its components checked by hand on tiny
sessions, its gates learned on validation, and two planted worlds with a known right answer:
a deterministic A -> B -> C step (what a Markov chain knows) and each listener's signature
song (what a Markov chain cannot know, the listener's history does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gnn.graph._data import random_snapshot
from gnn.graph._snapshot import GraphSnapshot
from gnn.sessions._baselines import Markov
from gnn.sessions._data import PrefixBatch, build_sessions, make_batch, positions, session_split
from gnn.sessions._evaluate import evaluate_sessions
from gnn.sessions._mixture import COMPONENTS, SessionMixture
from gnn.sessions._pipeline import (
    compare_session_models,
    load_next_song_predictor,
    prepare_sessions,
)
from spotify_engine.errors import ModelError
from tests.test_session import HOUR, planted, planted_hit_rate, planted_snapshot, tiny_sessions

__all__ = ["planted"]  # the fixture, imported for pytest

FAST = {"steps": 60, "taus": (0.2, 0.1)}


def _batch(*songs: int, user: int = -1, length: int = 6) -> PrefixBatch:
    items = np.full((1, length), -1, dtype=np.int64)
    items[0, length - len(songs) :] = songs
    return PrefixBatch(
        items=items,
        user=np.array([user]),
        hour=np.array([-1]),
        seen_rows=np.zeros(len(songs), dtype=np.int64),
        seen_cols=np.array(songs, dtype=np.int64),
    )


def signature_snapshot(
    num_users: int = 16, sessions_per_user: int = 12, filler: int = 6, seed: int = 0
) -> GraphSnapshot:
    """Each user u has a signature song (song u) played once in every session at a random
    place among ``filler`` songs drawn uniformly from a shared pool (songs ``num_users``..).
    The song before a signature play is random, so transitions say little about it; the
    user's own history says it all."""
    rng = np.random.default_rng(seed)
    pool = np.arange(num_users, num_users + 30)
    base = random_snapshot(num_users=num_users, num_songs=num_users + 30, plays_per_user=1)
    users, songs, ts, sess = [], [], [], []
    sid = 0
    for k in range(sessions_per_user):
        for u in range(num_users):
            seq = list(rng.choice(pool, size=filler, replace=False))
            seq.insert(int(rng.integers(1, filler + 1)), u)
            t0 = (k * num_users + u) * 2 * HOUR
            for j, s in enumerate(seq):
                users.append(u)
                songs.append(int(s))
                ts.append(t0 + j * 200_000)
                sess.append(sid)
            sid += 1
    base.play_user = np.asarray(users, dtype=np.int64)
    base.play_song = np.asarray(songs, dtype=np.int64)
    base.play_ts = np.asarray(ts, dtype=np.int64)
    base.play_session = np.asarray(sess, dtype=np.int64)
    base.play_ms = np.full(len(songs), 180_000, dtype=np.int64)
    base.play_skipped = np.zeros(len(songs), dtype=bool)
    return base


def test_components_match_counts_by_hand() -> None:
    # songs 0..9, artist of song s is s % 5; one user per session
    s = tiny_sessions([[0, 1, 5], [0, 1, 2], [5, 0, 6]], num_songs=10)
    m = SessionMixture(steps=0)
    m.fit(s)
    parts, avail, _ = m._parts(_batch(5, 0, user=0))
    d = dict(zip(m.components, parts[:, 0], strict=True))
    ok = dict(zip(m.components, avail[0], strict=True))
    # transition from 0: 0 -> 1 twice, 0 -> 6 once
    assert d["transition"][1] == pytest.approx(2 / 3) and d["transition"][6] == pytest.approx(1 / 3)
    assert d["transition"].sum() == pytest.approx(1.0)
    # transition2 from 5: 5 -> 0 once
    assert d["transition2"][0] == pytest.approx(1.0) and ok["transition2"]
    # user 0 played 0, 1, 5 once each
    assert list(np.flatnonzero(d["history"])) == [0, 1, 5]
    assert d["history"][0] == pytest.approx(1 / 3)
    # last song 0 is by artist 0, whose songs 0 and 5 were played 3 and 2 times (plus one each)
    assert d["artist"][0] == pytest.approx(4 / 7) and d["artist"][5] == pytest.approx(3 / 7)
    assert d["artist"].sum() == pytest.approx(1.0) and d["artist"][1] == 0
    # user 0's artists: 0 (songs 0 and 5), 1 (song 1)
    assert d["user_artist"][0] == pytest.approx(2 / 3 * 4 / 7)
    assert d["user_artist"][1] == pytest.approx(1 / 3 * 3 / 5)  # song 1: 2 + 1 of artist 1: 5
    # session: 0 (last) weighs 1, 5 weighs 0.5
    assert d["session"][0] == pytest.approx(2 / 3) and d["session"][5] == pytest.approx(1 / 3)
    assert d["session_artist"][0] == pytest.approx(4 / 7)  # both prefix songs are by artist 0
    assert d["popularity"].sum() == pytest.approx(1.0)
    assert all(ok.values())
    for name in COMPONENTS:
        assert d[name].min() >= 0


def test_unavailable_components_get_no_gate_and_scores_decompose() -> None:
    s = tiny_sessions([[0, 1, 2], [3, 4, 0]], num_songs=10)
    m = SessionMixture(steps=0)
    m.fit(s)
    # unknown user, a last song (7) never played: no history, no transition from it
    batch = _batch(7, user=-1)
    g = m.gates(batch)[0]
    named = dict(zip(m.components, g, strict=True))
    for off in ("transition", "transition2", "history", "user_artist"):
        assert named[off] == 0.0
    assert g.sum() == pytest.approx(1.0)
    # without validation the gates are uniform over what is available
    on = g[g > 0]
    assert np.allclose(on, on[0])
    both = _batch(0, 1, user=0)
    contrib = m.contributions(both)
    assert np.allclose(contrib.sum(axis=0), m.score(both), atol=1e-9)
    assert m.score(both).sum() == pytest.approx(1.0, abs=1e-4)


def test_issue18_mixture_learns_the_planted_step(planted) -> None:
    train, val, test = planted
    m = SessionMixture(**FAST)
    info = m.fit(train, val=val)
    assert m.tau in FAST["taus"] and info["val"][str(m.tau)] == max(info["val"].values())
    assert m.predict_next(recent_song_ids=["S7", "S0"], k=3)[0][0] == "S1"
    assert m.predict_next(recent_song_ids=["S9", "S0", "S1"], user_id="U2", k=3)[0][0] == "S2"
    assert planted_hit_rate(m, test) == 1.0


def test_issue18_mixture_finds_the_listeners_signature_song_markov_cannot() -> None:
    sessions = build_sessions(signature_snapshot())
    split = session_split(sessions, test_frac=0.2, val_frac=0.1)
    train, val, test = (sessions.subset(x) for x in (split.train, split.val, split.test))
    mix = SessionMixture(**FAST)
    mix.fit(train, val=val)
    markov = Markov()
    markov.fit(train)
    pts = positions(test)
    batch, target = make_batch(test, pts.session, pts.pos, mix.max_len)
    signature = target == test.user[pts.session]  # song u is user u's signature
    assert signature.sum() >= 20
    top_mix = mix.rank(batch, 1)[0][:, 0]
    top_markov = markov.rank(batch, 1)[0][:, 0]
    assert (top_mix[signature] == target[signature]).mean() >= 0.9
    assert (top_markov[signature] == target[signature]).mean() <= 0.3
    mrr_mix = evaluate_sessions(mix, test, (20,))["mrr@20"]
    mrr_markov = evaluate_sessions(markov, test, (20,))["mrr@20"]
    assert mrr_mix > 1.5 * mrr_markov


def test_issue18_mixture_is_served_when_best_on_validation(tmp_path: Path) -> None:
    exp = prepare_sessions(planted_snapshot())
    res = compare_session_models(
        exp,
        ["popularity", "markov", "sessionmix"],
        runs_root=tmp_path,
        activate=True,
        overrides={"sessionmix": FAST},
    )
    assert res.best == res.table["val_mrr@20"].idxmax()
    mix = load_next_song_predictor(tmp_path, res.run_ids["sessionmix"])
    assert isinstance(mix, SessionMixture) and mix.num_parameters() == mix.gate_.size
    q = {"recent_song_ids": ["S7", "S0"], "user_id": "U1", "k": 5}
    assert mix.predict_next(**q) == res.models["sessionmix"].predict_next(**q)
    assert "S0" not in [s for s, _ in mix.predict_next(**q)]


def test_mixture_arguments_and_unfitted_use_are_checked() -> None:
    with pytest.raises(ValueError, match="components must be some of"):
        SessionMixture(components=("transition", "genre"))
    with pytest.raises(ValueError, match="taus must be > 0"):
        SessionMixture(taus=(0.1, 0.0))
    with pytest.raises(ValueError, match="candidates and tune_positions"):
        SessionMixture(candidates=0)
    with pytest.raises(ModelError, match="call fit"):
        SessionMixture().score(_batch(1))
    only = SessionMixture(components=("popularity", "transition"), steps=0)
    assert only.components == ("transition", "popularity")
