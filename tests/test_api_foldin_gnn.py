"""Issue 14 item 1, the graph model, over real HTTP against the real Neo4j: with EnhancedGAT
active, a user with plays the run has not seen (a known user who posted more, or one the
events endpoint just created) is scored from the current graph: their representation
recomputed from their current edges through the trained weights, over the cached states of
the rest of the graph (``fold_in``, ``gnn.users.UserEncoder``), a new user's ID embedding
fitted to their plays, with gradient x attention evidence that names only their real plays
(no SPOTIFY_ENGINE_API_LIVE_EXPLAIN needed: it is the user's own ego network)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import neo4j
import numpy as np
import pytest
from _api_world import World, build_world, run_server, server_env

from graphdb import wipe_graph
from spotify_engine.settings import Settings

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

KEY = "test-key-" + "foldin-gnn-0123456789"


@pytest.fixture(scope="module")
def world(
    driver: neo4j.Driver, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> World:
    wipe_graph(driver, neo4j_settings.neo4j_database)
    return build_world(driver, neo4j_settings, tmp_path_factory.mktemp("fold-gnn-world"))


@pytest.fixture(scope="module")
def client(
    world: World, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    env = server_env(
        neo4j_settings,
        SPOTIFY_ENGINE_RUNS_DIR=str(world.runs_root),
        SPOTIFY_ENGINE_API_KEY=KEY,
        SPOTIFY_ENGINE_API_CACHE_TTL_S="0",
    )
    log: Path = tmp_path_factory.mktemp("fold-gnn-log") / "server.log"
    with run_server(env, log) as server, httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


@pytest.fixture(scope="module")
def trained(world: World):  # noqa: ANN201 - (recommender, snapshot) of the active run
    from gnn.core import load_run
    from gnn.users import load_trained

    return load_trained(load_run(world.runs_root, world.run_id))


def _post(client: httpx.Client, user: str, songs: list[str], key: str) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    plays = [
        {"song_id": s, "at": (start + timedelta(minutes=4 * i)).isoformat()}
        for i, s in enumerate(songs)
    ]
    r = client.post(
        "/events/plays",
        json={"user_id": user, "plays": plays, "idempotency_key": key},
        headers={"X-API-Key": KEY},
    )
    assert r.status_code == 201, r.text


def _current(driver: neo4j.Driver, db: str, user: str) -> tuple[dict[str, int], dict[str, int]]:
    records = driver.execute_query(
        "MATCH (:User {id: $u})-[l:LISTENED]->(s:Song) RETURN s.id AS s, l.plays AS n, "
        "coalesce(l.skips, 0) AS k",
        u=user,
        database_=db,
    ).records
    return {r["s"]: r["n"] for r in records}, {r["s"]: r["k"] for r in records if r["k"]}


def _expected(trained, user: str, plays, skips, k: int = 10):  # noqa: ANN001, ANN202
    from gnn.users import fold_in

    rec, snap = trained
    return fold_in(rec, snap, user, plays, k, skips=skips, explain=False).rows


def test_a_new_user_is_scored_from_their_plays_by_the_graph_model(
    client: httpx.Client, world: World, trained, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    user = "U_FOLD_GNN_NEW"
    assert client.get(f"/users/{user}/recommendations").json()["source"] == "popular"
    first, second = world.songs[10:14], world.songs[100:104]
    _post(client, user, first, "fold-gnn-new-1")

    body = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert body["source"] == "fold_in" and body["cold_start"] is False
    assert body["run_id"] == world.run_id and body["model"] == "enhanced_gat"
    assert body["explained"] is True and len(body["items"]) == 10
    ids = [i["song_id"] for i in body["items"]]
    assert not set(ids) & set(first)  # played songs are never recommended
    plays, skips = _current(driver, neo4j_settings.neo4j_database, user)
    want = _expected(trained, user, plays, skips)
    assert ids == [r.song_id for r in want]
    assert [i["score"] for i in body["items"]] == pytest.approx([r.score for r in want], abs=1e-4)
    # Evidence: every played piece is one of the user's plays, every reason is a sentence.
    for item in body["items"]:
        assert item["reason"]
        for e in item["evidence"]:
            if e["kind"] == "played":
                assert e["id"] in first

    # Their representation comes from their edges: other plays, another list.
    other = "U_FOLD_GNN_OTHER"
    _post(client, other, second, "fold-gnn-new-2")
    again = client.get(f"/users/{other}/recommendations", params={"k": 10}).json()
    assert again["source"] == "fold_in"
    assert [i["song_id"] for i in again["items"]] != ids


def _artists(driver: neo4j.Driver, db: str) -> dict[str, str]:
    records = driver.execute_query(
        "MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS s, a.id AS a", database_=db
    ).records
    return {r["s"]: r["a"] for r in records}


def test_a_one_artist_listener_gets_that_artists_other_songs_from_the_graph_model(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """The issue's test, on the GNN run: post plays of 4 songs of one artist for a new user;
    their top 10 then contains that artist's other songs. Every artist with at least 8 songs
    (13 in this world) is tried; the test world's model is a 3-epoch sketch, so the bar is
    80% of the listeners (the fitted ID embedding reaches 12 of 13; the mean ID row it
    replaces, 8 of 13; ``benchmarks/foldin.py`` measures the demo's run). The rules and
    ``max_per_artist`` apply on this path before the cut."""
    artists = _artists(driver, neo4j_settings.neo4j_database)
    hits: list[int] = []
    for n, (artist, count) in enumerate(Counter(artists.values()).most_common()):
        if count < 8:
            continue
        songs = sorted(s for s, a in artists.items() if a == artist)
        user = f"U_FOLD_GNN_ARTIST{n}"
        _post(client, user, songs[:4], f"fold-gnn-artist-{n}")
        body = client.get(
            f"/users/{user}/recommendations", params={"k": 10, "max_per_artist": 0}
        ).json()
        assert body["source"] == "fold_in" and body["model"] == "enhanced_gat"
        ids = [i["song_id"] for i in body["items"]]
        assert len(ids) == 10 and not set(ids) & set(songs[:4])
        hits.append(len(set(ids) & set(songs[4:])))
        # Evidence without live explanations: the user's own plays and genre shares.
        assert body["explained"] is True and any(i["evidence"] for i in body["items"])
        for item in body["items"]:
            for e in item["evidence"]:
                assert e["kind"] in ("played", "genre_affinity")
                if e["kind"] == "played":
                    assert e["id"] in songs[:4]
    assert len(hits) >= 10
    assert np.mean(np.array(hits) > 0) >= 0.8, hits
    # Rules and the cap on the graph model's fold-in path.
    ruled = client.get(
        f"/users/{user}/recommendations",
        params={"k": 10, "exclude_artists": artist, "max_per_artist": 1},
    ).json()
    assert ruled["source"] == "fold_in" and len(ruled["items"]) == 10
    shown = [artists.get(i["song_id"]) for i in ruled["items"]]
    assert artist not in shown and len(set(shown)) == 10


def test_a_known_user_with_new_plays_is_folded_in_with_their_current_graph(
    client: httpx.Client, world: World, trained, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    user = world.live_user  # in the training snapshot, scored live until now
    before = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert before["source"] == "live"
    new = [s["song_id"] for s in before["items"][:3]]
    _post(client, user, new, "fold-gnn-known-1")

    after = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert after["source"] == "fold_in" and after["model"] == "enhanced_gat"
    ids = [i["song_id"] for i in after["items"]]
    assert not set(ids) & set(new)  # now played
    plays, skips = _current(driver, neo4j_settings.neo4j_database, user)
    want = _expected(trained, user, plays, skips)
    assert ids == [r.song_id for r in want]
    assert [i["score"] for i in after["items"]] == pytest.approx([r.score for r in want], abs=1e-4)


def test_fold_in_with_unchanged_plays_reproduces_the_trained_scores(trained) -> None:
    """The ego encoding is exact for a user whose plays did not change: the fold-in path, the
    full recompute (``recompute="full"``) and the live path give the same list and scores
    (skips included)."""
    from gnn.users import fold_in, prepare

    rec, snap = trained
    full = prepare(snap).full()
    for u in (1, 5):
        sel = snap.play_user == u
        song_ids = snap.song_ids[snap.play_song[sel]].astype(str)
        ids, counts = np.unique(song_ids, return_counts=True)
        skipped = np.unique(song_ids[snap.play_skipped[sel].astype(bool)], return_counts=True)
        got = fold_in(
            rec, snap, str(snap.user_ids[u]), dict(zip(ids.tolist(), counts.tolist(), strict=True)),
            10, skips=dict(zip(skipped[0].tolist(), skipped[1].tolist(), strict=True)),
            explain=False,
        )  # fmt: skip
        want_ids, want_scores = rec.recommend(np.array([u]), 10, full)
        assert [r.song_id for r in got.rows] == [str(snap.song_ids[i]) for i in want_ids[0]]
        assert [r.score for r in got.rows] == pytest.approx(want_scores[0].tolist(), abs=1e-5)
        rebuilt = fold_in(
            rec, snap, str(snap.user_ids[u]), dict(zip(ids.tolist(), counts.tolist(), strict=True)),
            10, skips=dict(zip(skipped[0].tolist(), skipped[1].tolist(), strict=True)),
            explain=False, recompute="full",
        )  # fmt: skip
        assert [r.song_id for r in rebuilt.rows] == [r.song_id for r in got.rows]
        assert [r.score for r in rebuilt.rows] == pytest.approx(
            [r.score for r in got.rows], abs=1e-5
        )
