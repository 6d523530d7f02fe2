"""Issue 14 item 4: a run's per-artist cap is chosen on validation, its write-back stores lists
cut with it, and the API uses it as the default ``max_per_artist`` (0: no cap)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import neo4j
import numpy as np
import pytest
from _api_world import run_server, server_env

from gnn.core._metrics import ndcg_at_k
from gnn.graph._data import random_snapshot
from gnn.users import (
    EASE,
    cap_ranked,
    make_recommender,
    prepare,
    song_artists,
    train_model,
    write_back,
)
from gnn.users._diversity import CAPS, capped_lists, capped_recommend, choose_cap
from graphdb import wipe_graph
from spotify_engine.settings import Settings


def test_cut_keeps_score_order_and_skips_full_artists() -> None:
    artists = np.array([0, 0, 1, 0, -1, 2])
    ids = np.array([[0, 1, 2, 3, 4, 5], [3, 1, -1, -1, -1, -1]])
    scores = np.array([[6, 5, 4, 3, 2, 1], [2, 1, -np.inf, -np.inf, -np.inf, -np.inf]])
    got, got_scores, short = cap_ranked(ids, scores.astype(np.float32), artists, 4, 1)
    assert got[0].tolist() == [0, 2, 4, 5]  # 1 and 3: artist 0 is full; 4 has no artist
    assert got_scores[0].tolist() == [6, 4, 2, 1]
    assert got[1].tolist() == [3, -1, -1, -1] and short.tolist() == [False, True]
    assert cap_ranked(ids, scores.astype(np.float32), artists, 3, 2)[0][0].tolist() == [0, 1, 2]


def test_capped_lists_equal_the_cut_of_the_whole_ranking() -> None:
    snap = random_snapshot(num_users=30, num_songs=120, num_artists=4, plays_per_user=20, seed=4)
    exp = prepare(snap)
    rec = EASE()
    rec.fit(exp.train)
    observed = exp.observed("val")
    users = np.arange(snap.num_users)
    artists = song_artists(snap)
    whole = rec.recommend(users, snap.num_songs, observed)
    for cap in (1, 2, 3):
        ids, _ = capped_recommend(rec, users, 10, observed, cap)
        expect, _, _ = cap_ranked(*whole, artists, 10, cap)
        assert ids.tolist() == expect.tolist()
        for row in ids:
            counts = Counter(int(artists[i]) for i in row if i >= 0)
            assert max(counts.values()) <= cap
    # 4 artists and a cap of 1: only 4 songs can be listed (the whole catalogue was ranked)
    ids, _ = capped_recommend(rec, users, 10, observed, 1)
    assert ((ids >= 0).sum(axis=1) == 4).all()


@pytest.mark.parametrize("model", ["ease", "popularity"])
def test_one_ranking_gives_each_caps_own_lists(model: str) -> None:
    """``capped_lists`` (one ranking for every cap, what ``choose_cap`` uses) gives the lists
    ``capped_recommend`` computes cap by cap, cap None included; popularity scores tie a lot
    (ties across the 10th and the 100th place)."""
    snap = random_snapshot(num_users=40, num_songs=300, num_artists=6, plays_per_user=25, seed=8)
    exp = prepare(snap)
    rec = make_recommender(model)
    rec.fit(exp.train)
    observed = exp.observed("val")
    users = np.arange(snap.num_users)
    lists = capped_lists(rec, users, 10, observed, CAPS)
    assert list(lists) == list(CAPS)
    for cap in CAPS:
        ids, scores = capped_recommend(rec, users, 10, observed, cap)
        assert lists[cap][0].tolist() == ids.tolist(), cap
        assert lists[cap][1].tolist() == scores.tolist(), cap


def test_choice_is_the_best_validation_ndcg(tmp_path: Path) -> None:
    snap = random_snapshot(num_users=60, num_songs=150, num_artists=8, plays_per_user=40, seed=11)
    exp = prepare(snap)
    res = train_model(exp, "ease", runs_root=tmp_path, validate=True)
    div = res.fit_info["diversity"]
    figures = div["ndcg@10"]
    assert set(figures) == {"none" if c is None else str(c) for c in CAPS}
    # "none" is the harness's own validation NDCG@10
    assert figures["none"] == pytest.approx(res.val_metrics["ndcg@10"])
    best = max(figures.values())
    chosen = "none" if div["max_per_artist"] is None else str(div["max_per_artist"])
    assert figures[chosen] == best
    # recomputed independently for one cap
    users = np.array([u for u, r in enumerate(exp.val_relevant) if len(r)])
    ids, _ = capped_recommend(res.recommender, users, 10, exp.observed("val"), 2)
    mine = float(np.mean(ndcg_at_k(ids, [exp.val_relevant[u] for u in users], 10)))
    assert figures["2"] == pytest.approx(mine)
    stored = json.loads((res.run.path / "run.json").read_text())["fit_info"]["diversity"]
    assert stored["max_per_artist"] == div["max_per_artist"]
    # no validation user: nothing to choose by, no cap
    flat = choose_cap(res.recommender, exp.observed("val"), [np.array([], dtype=np.int64)] * 60)
    assert flat == {"max_per_artist": None, "ndcg@10": {}, "users": 0}


# -- over real HTTP ------------------------------------------------------------------------------
CAP = 1


@pytest.fixture(scope="module")
def capped_world(
    driver: neo4j.Driver, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """An EASE^R run whose validation choice is set to a cap of 1 (as if validation had chosen
    it; the choice itself is tested above), written back for the even users with that cap."""
    from gnn.graph import export_snapshot
    from ingest import SyntheticConfig, ingest

    db = neo4j_settings.neo4j_database
    wipe_graph(driver, db)
    folder = tmp_path_factory.mktemp("cap-world")
    ingest(
        "synthetic",
        None,
        driver=driver,
        settings=neo4j_settings,
        out_dir=folder / "data",
        synthetic=SyntheticConfig(
            users=30, songs=200, artists=12, genres=5, days=14, mean_plays_per_user=80, seed=9
        ),
    )
    exp = prepare(export_snapshot(driver, db))
    res = train_model(exp, "ease", runs_root=folder / "runs", validate=True)
    meta_path = res.run.path / "run.json"
    meta = json.loads(meta_path.read_text())
    meta["fit_info"]["diversity"]["max_per_artist"] = CAP
    meta_path.write_text(json.dumps(meta))
    users = np.arange(0, exp.snap.num_users, 2)
    write_back(
        driver, db, res.recommender, exp, res.run.run_id, users=users, k=10, max_per_artist=CAP
    )
    with driver.session(database=db) as s:
        artists = {
            r["s"]: r["a"]
            for r in s.run("MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS s, a.id AS a")
        }
    return {
        "runs": folder / "runs",
        "run_id": res.run.run_id,
        "stored": [str(exp.snap.user_ids[u]) for u in users],
        "live": str(exp.snap.user_ids[1]),
        "artists": artists,
    }


@pytest.fixture(scope="module")
def cap_client(
    capped_world: dict[str, object],
    neo4j_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    env = server_env(neo4j_settings, SPOTIFY_ENGINE_RUNS_DIR=str(capped_world["runs"]))
    log = tmp_path_factory.mktemp("cap-log") / "server.log"
    with run_server(env, log) as server, httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


@pytest.mark.neo4j
@pytest.mark.slow
def test_write_back_stores_lists_within_the_runs_cap(
    capped_world: dict[str, object], driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    artists = capped_world["artists"]
    with driver.session(database=neo4j_settings.neo4j_database) as s:
        lists = {
            r["u"]: r["songs"]
            for r in s.run(
                "MATCH (u:User)-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song) "
                "WITH u, r, s ORDER BY r.rank RETURN u.id AS u, collect(s.id) AS songs"
            )
        }
    assert set(lists) == set(capped_world["stored"])
    for songs in lists.values():
        assert len(songs) == 10
        assert max(Counter(artists[x] for x in songs).values()) <= CAP


@pytest.mark.neo4j
@pytest.mark.slow
def test_api_default_is_the_runs_cap_and_zero_lifts_it(
    capped_world: dict[str, object], cap_client: httpx.Client
) -> None:
    artists = capped_world["artists"]
    user = capped_world["stored"][0]
    url = f"/users/{user}/recommendations"
    body = cap_client.get(url, params={"k": 10}).json()
    assert body["source"] == "precomputed" and body["max_per_artist"] == CAP
    ids = [i["song_id"] for i in body["items"]]
    assert len(ids) == 10 and max(Counter(artists[s] for s in ids).values()) <= CAP
    # looser than the stored lists: ranked live, not cut from them
    for asked, cap in ((0, None), (2, 2)):
        got = cap_client.get(url, params={"k": 10, "max_per_artist": asked}).json()
        assert got["source"] == "live" and got["max_per_artist"] == cap, got
        assert len(got["items"]) == 10
        if cap is not None:
            counts = Counter(artists[i["song_id"]] for i in got["items"])
            assert max(counts.values()) <= cap
    # a user without stored rows gets the run's cap on the live path too
    live = cap_client.get(f"/users/{capped_world['live']}/recommendations").json()
    assert live["source"] == "live" and live["max_per_artist"] == CAP
    counts = Counter(artists[i["song_id"]] for i in live["items"])
    assert len(live["items"]) == 10 and max(counts.values()) <= CAP
    assert cap_client.get(url, params={"max_per_artist": -1}).status_code == 422
