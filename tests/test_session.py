"""Next song in a session (issue 7, issue 18): sessions, split, protocol, models, registry, CLI.

Tiny hand-built snapshots with a known right answer: a deterministic A -> B -> C pattern
planted in random sessions must be learned by Markov, the session kNNs (SKNN, V-SKNN, STAN),
the session GNN and its Markov hybrid; V-SKNN's and STAN's weights are checked by hand on
two-session examples; the served model is the best on validation, baselines included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gnn.core._registry import get_active, list_runs, save_run
from gnn.graph._data import random_snapshot
from gnn.graph._snapshot import GraphSnapshot, save_snapshot
from gnn.sessions._baselines import (
    SKNN,
    STAN,
    VSKNN,
    Markov,
    SessionPopularity,
    transition_matrix,
)
from gnn.sessions._data import (
    PrefixBatch,
    Sessions,
    build_sessions,
    make_batch,
    positions,
    session_split,
)
from gnn.sessions._evaluate import evaluate_sessions, target_ranks
from gnn.sessions._hybrid import SessionHybrid
from gnn.sessions._models import EDGE_EPS, edge_rows
from gnn.sessions._pipeline import (
    compare_session_models,
    load_next_song_predictor,
    prepare_sessions,
    selection_summary,
)
from gnn.sessions._train import SessionGNN
from spotify_engine.errors import ModelError, RunNotFound

A, B, C = 0, 1, 2
HOUR = 3_600_000


def planted_snapshot(
    num_users: int = 12,
    sessions_per_user: int = 10,
    num_songs: int = 40,
    filler: int = 8,
    seed: int = 0,
) -> GraphSnapshot:
    """Sessions of ``filler`` songs drawn from a skewed distribution over songs 3.. (so songs 3
    and 4 are played more than anything else), with A, B, C played in a row in each session:
    popularity alone gets the planted steps wrong, the session tells the answer."""
    rng = np.random.default_rng(seed)
    base = random_snapshot(num_users=num_users, num_songs=num_songs, plays_per_user=1, seed=seed)
    weights = 1.0 / np.arange(1, num_songs - 2) ** 1.2
    weights /= weights.sum()
    users, songs, ts, sess = [], [], [], []
    sid = 0
    for k in range(sessions_per_user):
        for u in range(num_users):
            fill = list(3 + rng.choice(num_songs - 3, size=filler, p=weights))
            at = int(rng.integers(0, len(fill) + 1))
            seq = fill[:at] + [A, B, C] + fill[at:]
            t0 = (k * num_users + u) * 2 * HOUR  # sessions never overlap, start times all differ
            for j, s in enumerate(seq):
                users.append(u)
                songs.append(int(s))
                ts.append(t0 + j * 200_000)
                sess.append(sid)
            sid += 1
    n = len(songs)
    base.play_user = np.asarray(users, dtype=np.int64)
    base.play_song = np.asarray(songs, dtype=np.int64)
    base.play_ts = np.asarray(ts, dtype=np.int64)
    base.play_session = np.asarray(sess, dtype=np.int64)
    base.play_ms = np.full(n, 180_000, dtype=np.int64)
    base.play_skipped = np.zeros(n, dtype=bool)
    return base


def planted_hit_rate(model, sessions: Sessions) -> float:
    """HitRate@1 over the held-out positions whose answer is planted (B after A, C after B)."""
    pts = positions(sessions)
    batch, target = make_batch(sessions, pts.session, pts.pos, model.max_len)
    recs, _ = model.rank(batch, 1)
    planted = np.isin(target, [B, C])
    assert planted.sum() >= 10
    return float((recs[planted, 0] == target[planted]).mean())


@pytest.fixture(scope="module")
def planted() -> tuple[Sessions, Sessions, Sessions]:
    sessions = build_sessions(planted_snapshot())
    split = session_split(sessions, test_frac=0.2, val_frac=0.1)
    return (
        sessions.subset(split.train),
        sessions.subset(split.val),
        sessions.subset(split.test),
    )


def tiny_sessions(seqs: list[list[int]], num_songs: int = 10) -> Sessions:
    """Sessions from lists of song indices, one user each, one hour apart."""
    snap = random_snapshot(num_users=len(seqs), num_songs=num_songs, plays_per_user=1)
    users, songs, ts, sess = [], [], [], []
    for i, seq in enumerate(seqs):
        for j, s in enumerate(seq):
            users.append(i)
            songs.append(s)
            ts.append(i * HOUR + j * 1000)
            sess.append(i)
    snap.play_user = np.asarray(users, dtype=np.int64)
    snap.play_song = np.asarray(songs, dtype=np.int64)
    snap.play_ts = np.asarray(ts, dtype=np.int64)
    snap.play_session = np.asarray(sess, dtype=np.int64)
    snap.play_ms = np.full(len(songs), 1000, dtype=np.int64)
    snap.play_skipped = np.zeros(len(songs), dtype=bool)
    return build_sessions(snap)


# --------------------------------------------------------------------------- data


def test_sessions_are_rebuilt_in_time_order_from_shuffled_plays() -> None:
    snap = planted_snapshot(num_users=3, sessions_per_user=2)
    perm = np.random.default_rng(1).permutation(snap.num_plays)
    for name in ("play_user", "play_song", "play_ts", "play_session", "play_ms", "play_skipped"):
        setattr(snap, name, getattr(snap, name)[perm])
    s = build_sessions(snap)
    assert s.num_sessions == 6 and len(s.songs) == snap.num_plays
    assert np.all(np.diff(s.start) > 0)
    for i in range(s.num_sessions):
        seg = s.songs[s.indptr[i] : s.indptr[i + 1]]
        assert np.all(np.diff(s.ts[s.indptr[i] : s.indptr[i + 1]]) > 0)
        j = int(np.flatnonzero(seg == A)[0])
        assert list(seg[j : j + 3]) == [A, B, C]


def test_global_time_cut_keeps_training_before_held_out() -> None:
    sessions = build_sessions(planted_snapshot())
    split = session_split(sessions, test_frac=0.2, val_frac=0.1)
    n = sessions.num_sessions
    assert split.test.sum() == round(0.2 * n) and split.val.sum() == round(0.1 * n)
    assert not (split.train & split.val).any() and not (split.val & split.test).any()
    assert sessions.start[split.train].max() < sessions.start[split.val].min()
    assert sessions.start[split.val].max() < sessions.start[split.test].min()
    assert split.describe()["sessions"]["train"] == n - split.val.sum() - split.test.sum()
    with pytest.raises(ValueError, match="bad split fractions"):
        session_split(sessions, test_frac=0.0)


def test_positions_leave_out_repeats_of_the_prefix() -> None:
    s = tiny_sessions([[4, 5, 4, 6], [7]])
    every = positions(s, exclude_seen=False)
    assert list(every.session) == [0, 0, 0] and list(every.pos) == [1, 2, 3]
    serving = positions(s, exclude_seen=True)
    assert list(serving.pos) == [1, 3] and serving.n_repeats == 1


def test_target_ranks() -> None:
    recs = np.array([[3, 1, 2], [5, 6, -1], [-1, -1, -1]])
    ranks = target_ranks(recs, np.array([2, 9, -1]))
    assert list(ranks) == [3.0, np.inf, np.inf]


# --------------------------------------------------------------------------- protocol


def test_markov_on_a_deterministic_chain_scores_perfectly() -> None:
    chain = [[5, 4, 3, 2, 1, 0]] * 8
    s = tiny_sessions(chain)
    m = Markov()
    m.fit(s)
    res = evaluate_sessions(m, s, ks=(1, 10))
    assert res["n_positions"] == 8 * 5
    assert res["hit_rate@1"] == res["mrr@10"] == 1.0
    pop = SessionPopularity()
    pop.fit(s)
    # Popularity ranks the equally played unseen songs by index, so song 0 comes first: right
    # only at the last of the five positions; the target's rank is 5, 4, 3, 2, 1.
    res_pop = evaluate_sessions(pop, s, ks=(1, 10))
    assert res_pop["hit_rate@1"] == pytest.approx(1 / 5)
    assert res_pop["mrr@10"] == pytest.approx(np.mean([1 / 5, 1 / 4, 1 / 3, 1 / 2, 1]))
    assert res_pop["hit_rate@10"] == 1.0


def test_exclude_seen_never_ranks_prefix_songs() -> None:
    s = tiny_sessions([[0, 1, 0, 1, 0, 1]] * 3)
    m = Markov()
    m.fit(s)
    strict = evaluate_sessions(m, s, ks=(1,), exclude_seen=True)
    assert strict["n_positions"] == 3 and strict["n_repeats"] == 12
    loose = evaluate_sessions(m, s, ks=(1,), exclude_seen=False)
    assert loose["n_positions"] == 15 and loose["hit_rate@1"] == 1.0


def test_popularity_misses_the_planted_steps(planted) -> None:
    train, _, test = planted
    counts = train.play_counts()
    assert counts[3] > counts[A] and counts[4] > counts[A]  # the data set does its job
    pop = SessionPopularity()
    pop.fit(train)
    assert pop.predict_next(recent_song_ids=["S7", "S0"], k=1)[0][0] == "S3"
    assert planted_hit_rate(pop, test) < 0.5


@pytest.mark.parametrize(
    "make",
    [
        Markov,
        lambda: SKNN(k_grid=()),
        lambda: VSKNN(idf_weight=0.0, tune=False),  # B is in every session: its IDF is 0
        VSKNN,
        lambda: STAN(tune=False),
        STAN,
    ],
    ids=["markov", "sknn", "vsknn", "vsknn-tuned", "stan", "stan-tuned"],
)
def test_planted_pattern_is_learned_by_the_baselines(make, planted) -> None:
    train, val, test = planted
    m = make()
    m.fit(train, val=val)
    assert m.predict_next(recent_song_ids=["S7", "S0"], k=3)[0][0] == "S1"
    assert m.predict_next(recent_song_ids=["S9", "S0", "S1"], k=3)[0][0] == "S2"
    assert planted_hit_rate(m, test) == 1.0


@pytest.mark.parametrize("negatives", [None, 16], ids=["full-softmax", "sampled-softmax"])
def test_planted_pattern_is_learned_by_the_session_gnn(negatives, planted) -> None:
    train, val, test = planted
    m = SessionGNN(
        dim=32, epochs=30, patience=30, batch_size=64, lr=1e-2, negatives=negatives, threads=1
    )
    info = m.fit(train, val=val)
    assert info["epochs"] >= 1 and np.isfinite(info["history"]["loss"]).all()
    assert info["history"]["loss"][-1] < info["history"]["loss"][0]
    for user in (None, "U3"):
        assert m.predict_next(recent_song_ids=["S7", "S0"], user_id=user, k=3)[0][0] == "S1"
        top = m.predict_next(recent_song_ids=["S9", "S0", "S1"], user_id=user, at_ms=HOUR, k=3)
        assert top[0][0] == "S2"
    assert planted_hit_rate(m, test) == 1.0


def test_predict_next_contract(planted) -> None:
    train, _, _ = planted
    m = Markov()
    m.fit(train)
    out = m.predict_next(recent_song_ids=["S0", "nope", "S5"], k=7)
    ids = [i for i, _ in out]
    scores = [v for _, v in out]
    assert len(out) == 7 and "S0" not in ids and "S5" not in ids and "nope" not in ids
    assert scores == sorted(scores, reverse=True) and len(set(ids)) == 7
    fallback = m.predict_next(recent_song_ids=["nope"], k=3)
    counts = train.play_counts()
    assert [i for i, _ in fallback] == [f"S{j}" for j in np.argsort(-counts, kind="stable")[:3]]
    assert len(m.predict_next(recent_song_ids=[], k=500)) == train.num_songs
    with pytest.raises(ValueError, match="k must be a positive integer"):
        m.predict_next(recent_song_ids=["S0"], k=0)
    with pytest.raises(ValueError, match="not one string"):
        m.predict_next(recent_song_ids="S0", k=3)


def test_scores_of_unfitted_models_raise_typed_errors() -> None:
    batch = PrefixBatch(
        items=np.zeros((1, 3), dtype=np.int64),
        user=np.zeros(1, dtype=np.int64),
        hour=np.zeros(1, dtype=np.int64),
        seen_rows=np.zeros(0, dtype=np.int64),
        seen_cols=np.zeros(0, dtype=np.int64),
    )
    for m in (
        SessionPopularity(),
        Markov(),
        SKNN(),
        VSKNN(),
        STAN(),
        SessionGNN(),
        SessionHybrid(),
    ):
        with pytest.raises(ModelError, match="call fit"):
            m.score(batch)


# --------------------------------------------------------------------------- registry


def test_runs_are_recorded_activated_and_served(tmp_path: Path) -> None:
    exp = prepare_sessions(planted_snapshot())
    res = compare_session_models(
        exp,
        ["popularity", "markov", "sknn"],
        runs_root=tmp_path,
        activate=True,
        overrides={"sknn": {"k_grid": (5, 50)}},
    )
    assert set(res.table.index) == {"popularity", "markov", "sknn"}
    assert res.best != "popularity"  # the planted pattern beats popularity on validation
    runs = list_runs(tmp_path)
    assert {r.task for r in runs} == {"session"} and len(runs) == 3
    assert get_active(tmp_path, task="session") == res.run_ids[res.best] == res.active
    assert get_active(tmp_path) is None  # the user task's pointer is untouched
    served = load_next_song_predictor(tmp_path)
    assert served.name == res.best and served.run_id == res.active
    fitted = res.models[res.best]
    q = {"recent_song_ids": ["S5", "S0"], "user_id": "U1", "k": 5}
    assert served.predict_next(**q) == fitted.predict_next(**q)
    other = load_next_song_predictor(tmp_path, res.run_ids["popularity"])
    assert other.name == "popularity"
    metrics = next(r for r in runs if r.run_id == res.active).metrics
    assert {"hit_rate@10", "mrr@20", "val_mrr@20", "n_positions"} <= set(metrics)


def test_loader_errors_are_typed_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="no active session run") as exc:
        load_next_song_predictor(tmp_path)
    assert "train --task session" in (exc.value.hint or "")
    with pytest.raises(RunNotFound, match="no run"):
        load_next_song_predictor(tmp_path, "20260101-000000-markov-abcdef")
    pop = SessionPopularity()
    pop.fit(tiny_sessions([[0, 1]]))
    info = save_run(pop, root=tmp_path, checkpoint=True, task="user")
    with pytest.raises(RunNotFound, match="serves the user task, not session"):
        load_next_song_predictor(tmp_path, info.run_id)


def test_session_gnn_survives_a_registry_round_trip(tmp_path: Path, planted) -> None:
    train, val, _ = planted
    m = SessionGNN(dim=16, epochs=2, batch_size=64, seed=0, threads=1)
    m.fit(train, val=val)
    info = save_run(m, root=tmp_path, checkpoint=True, task="session")
    assert info.checkpoint is not None and info.checkpoint.name == "model.pkl"
    served = load_next_song_predictor(tmp_path, info.run_id)
    q = {"recent_song_ids": ["S3", "S0"], "user_id": "U2", "at_ms": 5 * HOUR, "k": 5}
    assert served.predict_next(**q) == m.predict_next(**q)
    assert m.num_parameters() > 0


# --------------------------------------------------------------------------- CLI


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", **env}
    full.pop("SPOTIFY_ENGINE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_cli_train_and_evaluate_task_session(tmp_path: Path) -> None:
    snap_path = tmp_path / "snap.npz"
    save_snapshot(planted_snapshot(), snap_path)
    env = {
        "SPOTIFY_ENGINE_RUNS_DIR": str(tmp_path / "runs"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    missing = _cli("evaluate", "--task", "session", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "train --task session" in missing.stderr
    proc = _cli(
        "train", "--task", "session", "--snapshot", str(snap_path), "--epochs", "2",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in ("popularity", "markov", "sknn", "sessiongnn"):
        assert name in proc.stdout
    active = get_active(tmp_path / "runs", task="session")
    assert active is not None and "active session model" in proc.stdout
    ev = _cli("evaluate", "--task", "session", env=env, cwd=tmp_path)
    assert ev.returncode == 0 and "mrr@20" in ev.stdout and "sessiongnn" in ev.stdout
    bad = _cli("train", "--task", "bogus", env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "unknown task" in bad.stderr


def test_edge_feature_is_the_smoothed_transition_log_probability() -> None:
    s = tiny_sessions([[0, 1, 2], [0, 1, 3], [0, 2], [4, 0]], num_songs=6)
    counts = transition_matrix(s)  # 0 -> 1 twice, 0 -> 2 once, 1 -> 2, 1 -> 3, 4 -> 0
    items = np.array([[-1, 0], [4, 1], [-1, -1]])
    f = edge_rows(counts, items, -1).toarray()
    assert f[0, 1] == pytest.approx(np.log1p((2 / 3) / EDGE_EPS))
    assert f[0, 2] == pytest.approx(np.log1p((1 / 3) / EDGE_EPS))
    assert f[1, 3] == pytest.approx(np.log1p(0.5 / EDGE_EPS)) and f[2].sum() == 0
    assert (f[0, [0, 3, 4, 5]] == 0).all()
    # Leave-one-out: the example 0 -> 2 is taken out of its own counts, so it looks unseen.
    loo = edge_rows(counts, items, -1, leave_out=np.array([2, 3, 0])).toarray()
    assert loo[0, 2] == 0 and loo[0, 1] == pytest.approx(np.log1p(1.0 / EDGE_EPS))
    assert loo[1, 3] == 0 and loo[1, 2] == pytest.approx(np.log1p(1.0 / EDGE_EPS))
    second = edge_rows(counts, items, -2).toarray()
    assert second[1, 0] == pytest.approx(np.log1p(1.0 / EDGE_EPS)) and second[0].sum() == 0


# --------------------------------------------------------------------------- kNN weights (issue 18)


def _prefix(*songs: int, length: int = 5) -> PrefixBatch:
    items = np.full((1, length), -1, dtype=np.int64)
    items[0, length - len(songs) :] = songs
    return PrefixBatch(
        items=items,
        user=np.array([-1]),
        hour=np.array([-1]),
        seen_rows=np.zeros(len(songs), dtype=np.int64),
        seen_cols=np.array(songs, dtype=np.int64),
    )


def test_stan_weights_prefix_recency_and_distance_in_the_neighbour() -> None:
    # s0 = [5, 0, 1] (older), s1 = [0, 2, 3, 4]; prefix [0]: one shared song each.
    train = tiny_sessions([[5, 0, 1], [0, 2, 3, 4]], num_songs=8)
    m = STAN(k=10, l1=1.0, l2=None, l3=1.0, tune=False)
    m.fit(train)
    got = m.score(_prefix(0))[0] - 1e-6 * m.popularity_
    sim0, sim1 = 1 / np.sqrt(3), 1 / np.sqrt(4)  # w1 = 1, sim = 1 / sqrt(|s| |n|)
    e = np.exp(-1.0)
    want = np.zeros(8)
    want[0] = sim0 + sim1
    want[[5, 1]] = sim0 * e  # one step from the shared song in s0
    want[[2, 3, 4]] = sim1 * np.exp(-np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got, want / want.max(), rtol=1e-5, atol=1e-7)
    # Prefix [2, 0]: song 2 (one step back) weighs exp(-1) against the last song's 1.
    got = m.score(_prefix(2, 0))[0] - 1e-6 * m.popularity_
    sim0, sim1 = 1 / np.sqrt(2 * 3), (1 + e) / np.sqrt(2 * 4)
    assert got[1] / got[3] == pytest.approx(sim0 * e / (sim1 * np.exp(-2.0)), rel=1e-5)
    # Recency: with l2 the older session (s0) loses weight against s1.
    timed = STAN(k=10, l1=1.0, l2=1.0 / 24, l3=1.0, tune=False)  # one hour
    timed.fit(train)
    ratio = timed.score(_prefix(0))[0]
    assert ratio[1] / ratio[2] == pytest.approx(
        (1 / np.sqrt(3)) * np.exp(-1.0) / (1 / np.sqrt(4) * np.exp(-1.0)) * np.exp(-1.0), rel=1e-3
    )


def test_vsknn_decays_the_prefix_and_the_neighbour_by_the_last_shared_song() -> None:
    # prefix [0, 1]: weights 1/2 and 1. s0 = [0, 7] shares song 0 (two steps back),
    # s1 = [1, 6] shares song 1 (the last one); s2 = [0, 1, 5] shares both.
    train = tiny_sessions([[0, 7], [1, 6], [0, 1, 5]], num_songs=8)
    m = VSKNN(k=10, sample_size=None, idf_weight=0.0, tune=False)
    m.fit(train)
    got = m.score(_prefix(0, 1))[0] - 1e-6 * m.popularity_
    want = np.zeros(8)
    want[[0, 7]] = 0.5 * 0.5  # s0: sim 1/2, decay 1/2 (its shared song is two steps back)
    want[[1, 6]] += 1.0 * 1.0  # s1: sim 1, decay 1
    want[[0, 1, 5]] += 1.5 * 1.0  # s2: sim 1/2 + 1, decay 1
    np.testing.assert_allclose(got, want / want.max(), rtol=1e-5, atol=1e-7)
    # IDF: song 7 is in one of three sessions, song 6 too, so both gain the same factor.
    idf = VSKNN(k=10, sample_size=None, idf_weight=1.0, tune=False)
    idf.fit(train)
    g = idf.score(_prefix(0, 1))[0]
    assert g[6] / g[7] == pytest.approx(got[6] / got[7], rel=1e-4)
    # Sampling: only the most recent session sharing a song is a candidate.
    recent = VSKNN(k=10, sample_size=1, idf_weight=0.0, tune=False)
    recent.fit(train)
    r = recent.score(_prefix(0, 1))[0] - 1e-6 * recent.popularity_
    assert r[5] > 0 and r[6] == 0 and r[7] == 0


# --------------------------------------------------------------------------- hybrid, selection


def test_hybrid_mixes_gnn_and_markov_and_picks_the_weight_on_validation(planted) -> None:
    train, val, test = planted
    m = SessionHybrid(dim=16, epochs=2, batch_size=64, threads=1, weights=(0.0, 0.5, 0.9))
    info = m.fit(train, val=val)
    assert m.w in (0.0, 0.5, 0.9) and set(info["val"]) == {"0.0", "0.5", "0.9"}
    assert info["val"][str(m.w)] == max(info["val"].values())
    batch, _ = make_batch(test, np.array([0, 1]), np.array([1, 2]), m.max_len)
    p = m.score(batch)
    assert p.shape == (2, test.num_songs) and np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
    assert planted_hit_rate(m, test) == 1.0


def test_selection_names_the_winner_and_its_margins() -> None:
    sel = selection_summary(
        {"markov": 0.10, "stan": 0.08, "sessionhybrid": 0.12},
        {"markov": 0.11, "stan": 0.07, "sessionhybrid": 0.115},
        metric="mrr@20",
        baselines=("markov", "stan"),
    )
    assert sel["best"] == "sessionhybrid" and sel["runner_up"] == "markov"
    assert sel["margin"] == pytest.approx(0.2) and sel["best_baseline"] == "markov"
    assert sel["best_test"] == 0.115 and sel["best_baseline_test"] == 0.11
    base = selection_summary({"markov": 0.1, "sessiongnn": 0.05}, metric="m", baselines=("markov",))
    assert base["best"] == "markov" and "best_baseline" not in base  # a baseline may win


def test_issue18_served_run_is_the_best_on_validation_and_reuses_the_gnn(tmp_path: Path) -> None:
    exp = prepare_sessions(planted_snapshot())
    gnn = {"dim": 16, "epochs": 2, "batch_size": 64, "threads": 1}
    res = compare_session_models(
        exp,
        ["popularity", "markov", "stan", "sessiongnn", "sessionhybrid"],
        runs_root=tmp_path,
        activate=True,
        overrides={"stan": {"tune": False}, "sessiongnn": gnn, "sessionhybrid": dict(gnn)},
    )
    val = res.table["val_mrr@20"]
    assert res.best == val.idxmax() and res.selection["best"] == res.best
    assert res.fit_info["sessionhybrid"]["reused"] == ["markov", "sessiongnn"]
    assert res.models["sessionhybrid"].gnn is res.models["sessiongnn"]
    served = load_next_song_predictor(tmp_path)
    assert served.name == res.best and served.run_id == res.active
    hybrid = load_next_song_predictor(tmp_path, res.run_ids["sessionhybrid"])
    q = {"recent_song_ids": ["S7", "S0"], "user_id": "U1", "k": 5}
    assert hybrid.predict_next(**q) == res.models["sessionhybrid"].predict_next(**q)
    run = next(r for r in list_runs(tmp_path) if r.run_id == res.active)
    assert run.config["selection"]["best"] == res.best
