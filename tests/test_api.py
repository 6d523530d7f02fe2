"""The REST API (issue 6) over real HTTP: uvicorn in a subprocess, the real Neo4j, a model
trained by the project's pipeline on small synthetic data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import neo4j
import pytest
from _api_world import World, build_world, run_server, server_env

from gnn.core import load_run
from graphdb import get_registry, wipe_graph
from spotify_engine.settings import Settings

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

KEY = "test-key-" + "0123456789abcdef"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def world(
    driver: neo4j.Driver, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> World:
    wipe_graph(driver, neo4j_settings.neo4j_database)
    return build_world(driver, neo4j_settings, tmp_path_factory.mktemp("api-world"))


@pytest.fixture(scope="module")
def client(
    world: World, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    env = server_env(
        neo4j_settings,
        SPOTIFY_ENGINE_RUNS_DIR=str(world.runs_root),
        SPOTIFY_ENGINE_API_KEY=KEY,
        SPOTIFY_ENGINE_API_LIVE_EXPLAIN="true",
    )
    log = tmp_path_factory.mktemp("api-log") / "server.log"
    with run_server(env, log) as server, httpx.Client(base_url=server.url, timeout=300) as c:
        c.base_url_str = server.url  # type: ignore[attr-defined]
        yield c


def rows(driver: neo4j.Driver, db: str, query: str, **params: object) -> list[dict]:
    records, _, _ = driver.execute_query(query, params, database_=db)
    return [r.data() for r in records]


def problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# -- health and models --------------------------------------------------------------------------
def test_health_and_ready(client: httpx.Client, world: World) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["neo4j"]["reachable"] is True
    assert h["neo4j"]["version"].startswith("Neo4j/5")
    assert h["active_runs"] == {"user": world.run_id, "session": None, "playlist": None}
    assert set(h["versions"]) == {"spotify_engine", "neo4j_driver", "python"}
    assert client.get("/ready").json() == {"ready": True}


def test_models(client: httpx.Client, world: World) -> None:
    runs = client.get("/models").json()
    assert [r["run_id"] for r in runs] == [world.run_id]
    assert runs[0]["active"] is True and runs[0]["task"] == "user"
    # The API serves the metrics the registry recorded for the run, not a copy of its own.
    recorded = load_run(world.runs_root, world.run_id).metrics
    assert set(runs[0]["metrics"]) == set(recorded)
    assert runs[0]["metrics"]["ndcg@10"] == pytest.approx(recorded["ndcg@10"])
    assert 0 < recorded["ndcg@10"] <= 1
    active = client.get("/models/active").json()
    assert active["user"]["run_id"] == world.run_id and active["session"] is None
    assert active["loaded"] == {"user": True, "session": False, "playlist": False}


# -- recommendations ----------------------------------------------------------------------------
def test_precomputed_recommendations_are_the_written_back_rows(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    r = client.get(f"/users/{world.fresh_user}/recommendations", params={"k": 5}).json()
    assert r["source"] == "precomputed" and r["cold_start"] is False
    assert r["run_id"] == world.run_id and r["explained"] is True
    graph = rows(
        driver,
        neo4j_settings.neo4j_database,
        get_registry().text("explain/recommendations_for_user"),
        user_id=world.fresh_user,
        k=5,
    )
    assert [i["song_id"] for i in r["items"]] == [g["song_id"] for g in graph]
    assert [i["rank"] for i in r["items"]] == [1, 2, 3, 4, 5]
    assert [i["score"] for i in r["items"]] == pytest.approx([g["score"] for g in graph])
    for item in r["items"]:
        assert item["reason"] and item["name"]
        assert sum(e["weight"] for e in item["evidence"]) == pytest.approx(1.0, abs=1e-6)
        assert {e["label"] for e in item["evidence"]} <= {
            "Song",
            "User",
            "Artist",
            "Genre",
            "Playlist",
        }
    plain = client.get(
        f"/users/{world.fresh_user}/recommendations", params={"k": 5, "explain": "false"}
    ).json()
    assert all(i["evidence"] is None and i["reason"] is None for i in plain["items"])
    assert plain["explained"] is False
    assert [i["song_id"] for i in plain["items"]] == [i["song_id"] for i in r["items"]]


@pytest.mark.parametrize("who", ["live_user", "stale_user"])
def test_live_recommendations_when_not_fresh(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings, who: str
) -> None:
    user = getattr(world, who)
    r = client.get(f"/users/{user}/recommendations", params={"k": 8}).json()
    assert r["source"] == "live" and r["run_id"] == world.run_id and r["model"]
    assert r["explained"] is True
    assert len(r["items"]) == 8
    scores = [i["score"] for i in r["items"]]
    assert scores == sorted(scores, reverse=True)
    heard = {
        x["s"]
        for x in rows(
            driver,
            neo4j_settings.neo4j_database,
            "MATCH (:User {id: $u})-[:LISTENED]->(s:Song) RETURN s.id AS s",
            u=user,
        )
    }
    assert heard and not heard & {i["song_id"] for i in r["items"]}
    for item in r["items"]:
        assert item["name"] and item["reason"]
        assert sum(e["weight"] for e in item["evidence"]) == pytest.approx(1.0, abs=1e-6)


def test_genre_filter(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    in_genre = {
        x["s"]
        for x in rows(
            driver,
            neo4j_settings.neo4j_database,
            "MATCH (s:Song)-[:IN_GENRE]->(:Genre {id: $g}) RETURN s.id AS s",
            g=world.genre,
        )
    }
    for user in (world.fresh_user, world.live_user, "nobody-at-all"):
        r = client.get(
            f"/users/{user}/recommendations", params={"k": 5, "genre": world.genre}
        ).json()
        assert r["items"] and {i["song_id"] for i in r["items"]} <= in_genre, r


def test_cold_start_is_popular_songs(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    top = rows(
        driver,
        neo4j_settings.neo4j_database,
        "MATCH (:User)-[l:LISTENED]->(s:Song) WITH s, sum(l.plays) AS n, count(l) AS m "
        "RETURN s.id AS s ORDER BY n DESC, m DESC, s.id LIMIT 5",
    )
    for user in (world.empty_user, "never-seen-user"):
        r = client.get(f"/users/{user}/recommendations", params={"k": 5}).json()
        assert r["source"] == "popular" and r["cold_start"] is True and r["run_id"] is None
        assert [i["song_id"] for i in r["items"]] == [t["s"] for t in top]


# -- explanations -------------------------------------------------------------------------------
def test_explanation_precomputed_and_live(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    e = client.get(
        f"/users/{world.fresh_user}/recommendations/{world.fresh_song}/explanation"
    ).json()
    assert e["source"] == "precomputed" and e["rank"] == 1 and e["run_id"] == world.run_id
    graph = rows(
        driver,
        neo4j_settings.neo4j_database,
        get_registry().text("explain/why_recommended"),
        user_id=world.fresh_user,
        song_id=world.fresh_song,
    )[0]
    assert e["sentence"] == graph["reason"] and e["sentence"].startswith("Because")
    assert [(x["kind"], x["id"]) for x in e["evidence"]] == [
        (x["kind"], x["id"]) for x in graph["evidence"]
    ]
    live_top = client.get(f"/users/{world.live_user}/recommendations", params={"k": 1}).json()
    song = live_top["items"][0]["song_id"]
    x = client.get(f"/users/{world.live_user}/recommendations/{song}/explanation").json()
    assert x["source"] == "live" and x["rank"] == 1
    assert x["score"] == pytest.approx(live_top["items"][0]["score"], rel=1e-4)
    assert x["sentence"] == live_top["items"][0]["reason"]
    assert sum(v["weight"] for v in x["evidence"]) == pytest.approx(1.0, abs=1e-6)


def test_explanation_errors(client: httpx.Client, world: World) -> None:
    b = problem(client.get(f"/users/ghost/recommendations/{world.fresh_song}/explanation"), 404)
    assert "ghost" in b["detail"]
    b = problem(client.get(f"/users/{world.fresh_user}/recommendations/S999999/explanation"), 404)
    assert "S999999" in b["detail"]
    b = problem(
        client.get(f"/users/{world.empty_user}/recommendations/{world.fresh_song}/explanation"),
        404,
    )
    assert "not among" in b["detail"]


# -- songs and users ----------------------------------------------------------------------------
def test_song_and_similar(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    s = client.get(f"/songs/{world.fresh_song}").json()
    g = rows(
        driver,
        db,
        "MATCH (s:Song {id: $s})-[:BY]->(a:Artist) OPTIONAL MATCH (u)-[l:LISTENED]->(s) "
        "RETURN s.name AS name, a.id AS artist, sum(l.plays) AS plays, count(l) AS listeners",
        s=world.fresh_song,
    )[0]
    assert (s["name"], s["artist"]["id"], s["plays"], s["listeners"]) == (
        g["name"],
        g["artist"],
        g["plays"],
        g["listeners"],
    )
    assert s["genres"] and all(x["id"].startswith("G") for x in s["genres"])
    sim = client.get(f"/songs/{world.fresh_song}/similar", params={"k": 4}).json()
    expected = rows(
        driver,
        db,
        "MATCH (:Song {id: $s})-[x:SIMILAR_TO]->(t) RETURN t.id AS t ORDER BY x.rank LIMIT 4",
        s=world.fresh_song,
    )
    assert [i["song_id"] for i in sim["items"]] == [e["t"] for e in expected]
    assert len(sim["items"]) == 4 and sim["run_id"] == world.run_id
    problem(client.get("/songs/S999999"), 404)
    problem(client.get("/songs/S999999/similar"), 404)


def test_profile(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    p = client.get(f"/users/{world.fresh_user}/profile", params={"top": 3}).json()
    g = rows(
        driver,
        neo4j_settings.neo4j_database,
        "MATCH (u:User {id: $u}) OPTIONAL MATCH (u)-[l:LISTENED]->() "
        "RETURN sum(l.plays) AS plays, count(l) AS songs, COUNT { (u)-[:HAD]->() } AS sessions",
        u=world.fresh_user,
    )[0]
    assert (p["stats"]["plays"], p["stats"]["songs"], p["stats"]["sessions"]) == (
        g["plays"],
        g["songs"],
        g["sessions"],
    )
    assert len(p["top_genres"]) == 3 and len(p["top_artists"]) == 3
    weights = [x["weight"] for x in p["top_genres"]]
    assert weights == sorted(weights, reverse=True)
    assert p["stats"]["first_at"] <= p["stats"]["last_at"]
    empty = client.get(f"/users/{world.empty_user}/profile").json()
    assert empty["stats"]["plays"] == 0 and empty["top_genres"] == []
    assert "ghost" in problem(client.get("/users/ghost/profile"), 404)["detail"]


# -- sessions and playlists ---------------------------------------------------------------------
def test_next_song_by_transitions(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    seed = rows(
        driver,
        db,
        "MATCH (a:Song)-[f:FOLLOWED_BY]->() WITH a, count(f) AS n WHERE n >= 3 "
        "RETURN a.id AS a ORDER BY n DESC, a.id LIMIT 1",
    )[0]["a"]
    expected = rows(
        driver,
        db,
        "MATCH (:Song {id: $a})-[f:FOLLOWED_BY]->(b) WHERE b.id <> $a "
        "RETURN b.id AS b, f.count AS c ORDER BY c DESC, b.id LIMIT 3",
        a=seed,
    )
    r = client.post(
        "/sessions/next",
        json={
            "recent_song_ids": [seed],
            "user_id": world.fresh_user,
            "k": 3,
            "at": "2026-02-01T12:00:00Z",
        },
    ).json()
    assert r["fallback"] is True and r["model"] == "graph-transitions" and r["run_id"] is None
    assert [(i["song_id"], i["score"]) for i in r["items"]] == [
        (e["b"], float(e["c"])) for e in expected
    ]
    problem(client.post("/sessions/next", json={"recent_song_ids": ["S999999"]}), 404)
    problem(
        client.post("/sessions/next", json={"recent_song_ids": [seed], "user_id": "ghost"}), 404
    )
    b = problem(client.post("/sessions/next", json={"recent_song_ids": []}), 422)
    assert b["errors"][0]["field"] == "recent_song_ids"


def test_playlist_continuation(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    members = [
        x["s"]
        for x in rows(
            driver,
            db,
            "MATCH (:Playlist {id: $p})-[c:CONTAINS]->(s) RETURN s.id AS s ORDER BY c.pos",
            p=world.playlist_id,
        )
    ]
    seeds = members[:2]
    expected = rows(
        driver,
        db,
        "UNWIND $seeds AS id MATCH (:Song {id: id})<-[:CONTAINS]-(p)-[:CONTAINS]->(t) "
        "WHERE NOT t.id IN $seeds WITH t, count(*) AS n "
        "RETURN t.id AS t, n ORDER BY n DESC, t.id LIMIT 5",
        seeds=seeds,
    )
    r = client.post("/playlists/continue", json={"song_ids": seeds, "k": 5, "name": "mix"}).json()
    assert r["fallback"] is True and r["model"] == "graph-cooccurrence"
    got = [(i["song_id"], i["score"]) for i in r["items"]]
    assert got[: len(expected)] == [(e["t"], float(e["n"])) for e in expected]
    assert not set(seeds) & {i["song_id"] for i in r["items"]}
    g = client.get(f"/playlists/{world.playlist_id}/continuation", params={"k": 5}).json()
    assert g["playlist_id"] == world.playlist_id and len(g["items"]) == 5
    assert not set(members) & {i["song_id"] for i in g["items"]}
    problem(client.get("/playlists/nope/continuation"), 404)
    problem(client.post("/playlists/continue", json={"track_uris": ["spotify:track:zzz"]}), 404)
    b = problem(
        client.post(
            "/playlists/continue", json={"song_ids": seeds, "track_uris": ["spotify:track:a"]}
        ),
        422,
    )
    assert "at most one" in b["detail"]
    # K = 0: a name alone is a valid request (issue 7); nothing at all is not.
    named = client.post("/playlists/continue", json={"name": "Chill Rock", "k": 5}).json()
    assert named["cold_start"] is True and len(named["items"]) == 5
    assert "name" in problem(client.post("/playlists/continue", json={"k": 5}), 422)["detail"]


# -- partial input and rules (issue 14) ---------------------------------------------------------
def _artists(driver: neo4j.Driver, db: str) -> dict[str, tuple[str, str]]:
    """``{song_id: (artist_id, artist_name)}``."""
    return {
        x["s"]: (x["a"], x["n"])
        for x in rows(
            driver, db, "MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS s, a.id AS a, a.name AS n"
        )
    }


def _session_seed_and_members(
    driver: neo4j.Driver, db: str, playlist: str
) -> tuple[str, list[str]]:
    """A song with at least 3 ``FOLLOWED_BY`` successors, and ``playlist``'s songs in order."""
    seed = rows(
        driver,
        db,
        "MATCH (a:Song)-[f:FOLLOWED_BY]->() WITH a, count(f) AS n WHERE n >= 3 "
        "RETURN a.id AS a ORDER BY n DESC, a.id LIMIT 1",
    )[0]["a"]
    members = [
        x["s"]
        for x in rows(
            driver,
            db,
            "MATCH (:Playlist {id: $p})-[c:CONTAINS]->(s) RETURN s.id AS s ORDER BY c.pos",
            p=playlist,
        )
    ]
    return seed, members


def _ids(r: dict) -> list[str]:
    return [i["song_id"] for i in r["items"]]


def test_unknown_input_songs_are_ignored_and_listed(client: httpx.Client, world: World) -> None:
    """Issue 14 item 2: one unknown song no longer fails a session or a playlist."""
    seeds = world.songs[10:13]
    full = client.post("/sessions/next", json={"recent_song_ids": seeds, "k": 5}).json()
    assert full["ignored"] == []
    mixed = [seeds[0], "S999999", seeds[1], "S888888", seeds[2], "S999999"]
    r = client.post("/sessions/next", json={"recent_song_ids": mixed, "k": 5})
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == ["S999999", "S888888"]
    assert r.json()["items"] == full["items"]
    b = problem(
        client.post("/sessions/next", json={"recent_song_ids": ["S999999", "S888888"]}), 404
    )
    assert "S999999" in b["detail"] and "S888888" in b["detail"]

    plain = client.post("/playlists/continue", json={"song_ids": seeds[:2], "k": 5}).json()
    r = client.post(
        "/playlists/continue", json={"song_ids": [seeds[0], "S777777", seeds[1]], "k": 5}
    )
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == ["S777777"] and r.json()["items"] == plain["items"]
    assert (
        "S777777"
        in problem(client.post("/playlists/continue", json={"song_ids": ["S777777"]}), 404)[
            "detail"
        ]
    )
    # A name is still something to continue from.
    named = client.post(
        "/playlists/continue", json={"song_ids": ["S777777"], "name": "Chill Rock", "k": 5}
    ).json()
    assert named["ignored"] == ["S777777"] and named["cold_start"] is True
    assert len(named["items"]) == 5


def test_rules_on_user_recommendations(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """Issue 14 item 3: excluded songs and artists are left out before the cut, so k items
    come back on every path (precomputed, live, popular)."""
    artists = _artists(driver, neo4j_settings.neo4j_database)
    for user, by_name in (
        (world.fresh_user, False),
        (world.live_user, True),
        (world.empty_user, False),
    ):
        url = f"/users/{user}/recommendations"
        base = client.get(url, params={"k": 5, "explain": "false"}).json()
        song = base["items"][0]["song_id"]
        artist_id, artist_name = artists[base["items"][1]["song_id"]]
        artist = artist_name.upper() if by_name else artist_id
        r = client.get(
            url,
            params={
                "k": 5,
                "explain": "false",
                "exclude_songs": [song],
                "exclude_artists": [artist],
            },
        ).json()
        assert len(r["items"]) == 5, r
        assert song not in _ids(r)
        assert all(artists[s][0] != artist_id for s in _ids(r)), r
        if user == world.empty_user:
            assert r["source"] == "popular"
    g = client.get(
        f"/users/{world.fresh_user}/recommendations",
        params={"k": 3, "genre": world.genre, "exclude_artists": ["no-such-artist"]},
    )
    assert g.status_code == 200 and len(g.json()["items"]) == 3


def test_rules_on_similar_songs(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    artists = _artists(driver, db)
    ranked = [
        x["t"]
        for x in rows(
            driver,
            db,
            "MATCH (:Song {id: $s})-[x:SIMILAR_TO]->(t) RETURN t.id AS t ORDER BY x.rank",
            s=world.fresh_song,
        )
    ]
    song, artist = ranked[0], artists[ranked[1]][0]
    want = [t for t in ranked if t != song and artists[t][0] != artist][:3]
    assert len(want) == 3
    r = client.get(
        f"/songs/{world.fresh_song}/similar",
        params={"k": 3, "exclude_songs": [song], "exclude_artists": [artist]},
    ).json()
    assert _ids(r) == want


def test_max_per_artist_on_similar_next_song_and_continuation(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """Issue 14 item 4 beyond a user's list: the cap holds on every list endpoint, before the
    cut (a list still has k items when k such songs exist); the stored neighbours of a song are
    cut in their rank order."""
    db = neo4j_settings.neo4j_database
    artists = _artists(driver, db)

    def most_per_artist(body: dict) -> int:
        return max(Counter(artists[s][0] for s in _ids(body)).values())

    seed, members = _session_seed_and_members(driver, db, world.playlist_id)
    for path, body in (
        ("/sessions/next", {"recent_song_ids": [seed]}),
        ("/playlists/continue", {"song_ids": members[:2]}),
    ):
        for cap in (1, 2):
            r = client.post(path, json={**body, "k": 10, "max_per_artist": cap})
            assert r.status_code == 200, r.text
            assert len(r.json()["items"]) == 10 and most_per_artist(r.json()) <= cap, r.json()
        assert client.post(path, json={**body, "max_per_artist": 0}).status_code == 422
    r = client.get(
        f"/playlists/{world.playlist_id}/continuation", params={"k": 10, "max_per_artist": 1}
    ).json()
    assert len(r["items"]) == 10 and most_per_artist(r) == 1
    ranked = [
        x["t"]
        for x in rows(
            driver,
            db,
            "MATCH (:Song {id: $s})-[x:SIMILAR_TO]->(t) RETURN t.id AS t ORDER BY x.rank",
            s=world.fresh_song,
        )
    ]
    want, seen = [], Counter()
    for t in ranked:
        if seen[artists[t][1]] < 1:
            seen[artists[t][1]] += 1
            want.append(t)
    r = client.get(f"/songs/{world.fresh_song}/similar", params={"k": 5, "max_per_artist": 1})
    assert r.status_code == 200 and _ids(r.json()) == want[:5]
    assert (
        client.get(f"/songs/{world.fresh_song}/similar", params={"max_per_artist": 0}).status_code
        == 422
    )


def test_rules_on_next_song_and_continuation_fallbacks(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    artists = _artists(driver, db)
    in_genre = {
        x["s"]
        for x in rows(
            driver,
            db,
            "MATCH (s:Song)-[:IN_GENRE]->(:Genre {id: $g}) RETURN s.id AS s",
            g=world.genre,
        )
    }
    seed, members = _session_seed_and_members(driver, db, world.playlist_id)
    for path, body in (
        ("/sessions/next", {"recent_song_ids": [seed]}),
        ("/playlists/continue", {"song_ids": members[:2]}),
    ):
        base = client.post(path, json={**body, "k": 5}).json()
        song = base["items"][0]["song_id"]
        artist = artists[base["items"][1]["song_id"]][0]
        r = client.post(
            path, json={**body, "k": 5, "exclude_songs": [song], "exclude_artists": [artist]}
        ).json()
        assert len(r["items"]) == 5, r
        assert song not in _ids(r) and all(artists[s][0] != artist for s in _ids(r)), r
        # What the rules did not remove keeps its order (filtered in the query, before the cut).
        kept = [s for s in _ids(base) if s != song and artists[s][0] != artist]
        assert _ids(r)[: len(kept)] == kept
        g = client.post(path, json={**body, "k": 4, "genre": world.genre}).json()
        assert len(g["items"]) == 4 and set(_ids(g)) <= in_genre, g
    r = client.get(
        f"/playlists/{world.playlist_id}/continuation",
        params={"k": 5, "exclude_artists": [artists[members[0]][0]]},
    ).json()
    assert len(r["items"]) == 5
    assert all(artists[s][0] != artists[members[0]][0] for s in _ids(r))


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/users/U00001/recommendations?k=0", "query.k"),
        ("/users/U00001/recommendations?k=101", "query.k"),
        ("/users/U00001/recommendations?max_per_artist=101", "query.max_per_artist"),
        ("/users/U00001/recommendations?exclude_songs=bad%20id", "query.exclude_songs[0]"),
        ("/users/bad%20id/recommendations", "path.user_id"),
        ("/songs/U00001/similar?k=abc", "query.k"),
        ("/songs/bad%20id", "path.song_id"),
        ("/users/" + "x" * 201 + "/profile", "path.user_id"),
    ],
)
def test_bad_input_names_the_field(client: httpx.Client, path: str, field: str) -> None:
    b = problem(client.get(path), 422)
    assert b["errors"][0]["field"] == field and field in b["detail"]


def test_unknown_route_is_a_problem(client: httpx.Client) -> None:
    problem(client.get("/nothing/here"), 404)


# -- play events --------------------------------------------------------------------------------
def _listened(driver: neo4j.Driver, db: str, user: str) -> dict[str, int]:
    return {
        x["s"]: x["n"]
        for x in rows(
            driver,
            db,
            "MATCH (:User {id: $u})-[l:LISTENED]->(s) RETURN s.id AS s, l.plays AS n",
            u=user,
        )
    }


def test_play_events_reach_the_aggregates_exactly_once(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    user = world.fresh_user
    a, b = world.songs[0], world.songs[1]
    before = _listened(driver, db, user)
    trans = rows(
        driver,
        db,
        "OPTIONAL MATCH (:Song {id: $a})-[f:FOLLOWED_BY]->(:Song {id: $b}) "
        "RETURN coalesce(f.count, 0) AS n",
        a=a,
        b=b,
    )[0]["n"]
    profile_before = client.get(f"/users/{user}/profile").json()["stats"]["plays"]
    batch = {
        "user_id": user,
        "plays": [
            {"song_id": b, "at": "2026-03-01T10:04:00Z"},
            {"song_id": a, "at": "2026-03-01T10:00:00Z", "ms_played": 200000},
        ],
    }
    headers = {"X-API-Key": KEY, "Idempotency-Key": "batch-0001"}
    r = client.post("/events/plays", json=batch, headers=headers)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["duplicate"] is False and first["plays"] == 2 and first["user_created"] is False
    again = client.post("/events/plays", json=batch, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["session_id"] == first["session_id"]
    after = _listened(driver, db, user)
    assert after[a] == before.get(a, 0) + 1 and after[b] == before.get(b, 0) + 1
    assert {k: v for k, v in after.items() if k not in (a, b)} == {
        k: v for k, v in before.items() if k not in (a, b)
    }
    trans_after = rows(
        driver,
        db,
        "MATCH (:Song {id: $a})-[f:FOLLOWED_BY]->(:Song {id: $b}) RETURN f.count AS n",
        a=a,
        b=b,
    )[0]["n"]
    assert trans_after == trans + 1  # ordered by time: a, then b
    assert client.get(f"/users/{user}/profile").json()["stats"]["plays"] == profile_before + 2
    body_key = {**batch, "idempotency_key": "batch-0002"}
    assert (
        client.post("/events/plays", json=body_key, headers={"X-API-Key": KEY}).status_code == 201
    )
    assert (
        client.post("/events/plays", json=body_key, headers={"X-API-Key": KEY}).status_code == 200
    )
    assert _listened(driver, db, user)[a] == before.get(a, 0) + 2


def test_play_events_create_new_users(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    batch = {
        "user_id": "app-user-1",
        "plays": [{"song_id": world.songs[5], "at": "2026-03-02T09:00:00"}],
    }
    r = client.post("/events/plays", json=batch, headers={"X-API-Key": KEY})
    assert r.status_code == 201 and r.json()["user_created"] is True
    assert _listened(driver, neo4j_settings.neo4j_database, "app-user-1") == {world.songs[5]: 1}
    rec = client.get("/users/app-user-1/recommendations", params={"k": 3}).json()
    # History the active EnhancedGAT run never saw: folded in (the graph rebuilt with it).
    assert rec["source"] == "fold_in" and rec["cold_start"] is False
    assert rec["model"] == "enhanced_gat" and world.songs[5] not in {
        i["song_id"] for i in rec["items"]
    }


def test_play_event_errors(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    batch = {
        "user_id": world.fresh_user,
        "plays": [{"song_id": world.songs[0], "at": "2026-03-03T10:00:00Z"}],
    }
    b = problem(client.post("/events/plays", json=batch), 401)
    assert "X-API-Key" in b["hint"]
    problem(client.post("/events/plays", json=batch, headers={"X-API-Key": "wrong"}), 403)
    before = _listened(driver, neo4j_settings.neo4j_database, world.fresh_user)
    bad = {
        "user_id": world.fresh_user,
        "plays": [*batch["plays"], {"song_id": "S999999", "at": "2026-03-03T10:05:00Z"}],
    }
    b = problem(client.post("/events/plays", json=bad, headers={"X-API-Key": KEY}), 404)
    assert "S999999" in b["detail"]
    assert _listened(driver, neo4j_settings.neo4j_database, world.fresh_user) == before
    b = problem(
        client.post(
            "/events/plays", json={"user_id": "u", "plays": []}, headers={"X-API-Key": KEY}
        ),
        422,
    )
    assert b["errors"][0]["field"] == "plays"


# -- property-based: no input makes the API fail ------------------------------------------------
def test_schemathesis_finds_no_server_errors(client: httpx.Client, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    proc = subprocess.run(
        [
            exe,
            "run",
            f"{client.base_url_str}/openapi.json",  # type: ignore[attr-defined]
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "6",
            "--header",
            f"X-API-Key: {KEY}",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=540,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert " passed" in out and "13/13" in out, out[-2000:]


@pytest.fixture(scope="module")
def task_runs(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> tuple[Any, str, str]:
    """A markov session run and an itemknn playlist run, trained on the world's graph and
    activated; returns ``(snapshot, session run id, playlist run id)`` once the running API
    has loaded both (no restart)."""
    from gnn.graph._export import export_snapshot
    from gnn.playlists._pipeline import train_playlist_models
    from gnn.sessions._pipeline import compare_session_models, prepare_sessions

    snap = export_snapshot(driver, neo4j_settings.neo4j_database)
    sess = compare_session_models(
        prepare_sessions(snap), ["markov"], runs_root=world.runs_root, activate=True
    )
    results, _ = train_playlist_models(
        snap, ["itemknn"], runs_root=world.runs_root, activate="itemknn"
    )
    session_run = sess.run_ids["markov"]
    playlist_run = results["itemknn"].run.run_id  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while True:
        active = client.get("/models/active").json()
        session_ok = (active.get("session") or {}).get("run_id") == session_run
        playlist_ok = (active.get("playlist") or {}).get("run_id") == playlist_run
        if session_ok and playlist_ok:
            return snap, session_run, playlist_run
        assert time.monotonic() < deadline, active
        time.sleep(0.5)


def test_trained_task_models_answer_once_activated(
    client: httpx.Client,
    world: World,
    driver: neo4j.Driver,
    neo4j_settings: Settings,
    task_runs: tuple[Any, str, str],
) -> None:
    """Issues 6 and 7: once a session and a playlist run are activated, the running API loads
    them (no restart) and answers with exactly what the models rank."""
    from gnn import load_next_song_predictor, load_playlist_continuer

    snap, session_run, playlist_run = task_runs

    seeds = [str(s) for s in snap.song_ids[snap.play_song[:2]]]
    want = load_next_song_predictor(world.runs_root).predict_next(recent_song_ids=seeds, k=5)
    r = client.post("/sessions/next", json={"recent_song_ids": seeds, "k": 5}).json()
    assert (r["model"], r["run_id"], r["fallback"]) == ("markov", session_run, False)
    assert [i["song_id"] for i in r["items"]] == [s for s, _ in want]
    assert [i["score"] for i in r["items"]] == pytest.approx([v for _, v in want])

    members = [str(snap.song_ids[i]) for i in snap.playlist_song[1][snap.playlist_song[0] == 0]]
    want = load_playlist_continuer(world.runs_root).continue_playlist(song_ids=members[:3], k=5)
    r = client.post("/playlists/continue", json={"song_ids": members[:3], "k": 5}).json()
    assert (r["model"], r["run_id"], r["fallback"]) == ("itemknn", playlist_run, False)
    assert [i["song_id"] for i in r["items"]] == [s for s, _ in want]

    # Issue 14: the rules cut a model's ranking before the top k, not after.
    artists = _artists(driver, neo4j_settings.neo4j_database)
    ranked = load_next_song_predictor(world.runs_root).predict_next(
        recent_song_ids=seeds, k=len(snap.song_ids)
    )
    song, artist = ranked[0][0], artists[ranked[1][0]][0]
    want_ids = [s for s, _ in ranked if s != song and artists.get(s, ("",))[0] != artist][:5]
    r = client.post(
        "/sessions/next",
        json={
            "recent_song_ids": [*seeds, "S999999"],
            "k": 5,
            "exclude_songs": [song],
            "exclude_artists": [artist],
        },
    ).json()
    assert r["model"] == "markov" and r["ignored"] == ["S999999"]
    assert _ids(r) == want_ids
    ranked = load_playlist_continuer(world.runs_root).continue_playlist(
        song_ids=members[:3], k=len(snap.song_ids)
    )
    artist = artists[ranked[0][0]][0]
    want_ids = [s for s, _ in ranked if artists.get(s, ("",))[0] != artist][:5]
    r = client.post(
        "/playlists/continue",
        json={"song_ids": members[:3], "k": 5, "exclude_artists": [artist]},
    ).json()
    assert r["model"] == "itemknn" and _ids(r) == want_ids


def test_max_per_artist_on_the_task_models(
    client: httpx.Client,
    world: World,
    driver: neo4j.Driver,
    neo4j_settings: Settings,
    task_runs: tuple[Any, str, str],
) -> None:
    """Issue 14 item 4: ``max_per_artist`` holds on the MODEL paths of next song and playlist
    continuation (not only on the graph fallbacks): the answer is the model's own ranking cut
    in order at ``cap`` songs per artist, still ``k`` long."""
    from gnn import load_next_song_predictor, load_playlist_continuer

    snap, session_run, playlist_run = task_runs
    artists = _artists(driver, neo4j_settings.neo4j_database)
    n_songs = len(snap.song_ids)

    def capped(ranked: list[tuple[str, float]], skip: list[str], cap: int | None) -> list[str]:
        out: list[str] = []
        seen: Counter[str] = Counter()
        for s, _ in ranked:
            a = artists.get(s, (None, None))[1]
            if s in skip or (cap is not None and a is not None and seen[a] >= cap):
                continue
            if a is not None:
                seen[a] += 1
            out.append(s)
            if len(out) == 10:
                break
        return out

    def most_per_artist(ids: list[str]) -> int:
        return max(Counter(artists.get(s, (None, s))[1] for s in ids).values())

    session = load_next_song_predictor(world.runs_root)
    playlist = load_playlist_continuer(world.runs_root)
    # inputs whose uncapped model lists repeat an artist, so that an uncapped answer fails
    session_seed = next(
        (
            [s]
            for s in (str(x) for x in snap.song_ids[snap.play_song[:200]])
            if most_per_artist(
                capped(session.predict_next(recent_song_ids=[s], k=n_songs), [s], None)
            )
            > 1
        ),
        None,
    )
    assert session_seed, "no session seed whose model list repeats an artist"
    playlists = (
        [str(snap.song_ids[i]) for i in snap.playlist_song[1][snap.playlist_song[0] == p]][:3]
        for p in range(min(snap.num_playlists, 200))
    )
    playlist_seeds = next(
        (
            m
            for m in playlists
            if len(m) == 3
            and most_per_artist(capped(playlist.continue_playlist(song_ids=m, k=n_songs), m, None))
            > 1
        ),
        None,
    )
    assert playlist_seeds, "no playlist whose model list repeats an artist"
    cases = [
        (
            "/sessions/next",
            {"recent_song_ids": session_seed},
            session.predict_next(recent_song_ids=session_seed, k=n_songs),
            session_seed,
            session_run,
        ),
        (
            "/playlists/continue",
            {"song_ids": playlist_seeds},
            playlist.continue_playlist(song_ids=playlist_seeds, k=n_songs),
            playlist_seeds,
            playlist_run,
        ),
    ]
    for path, body, ranked, skip, run in cases:
        uncapped = capped(ranked, skip, None)
        r = client.post(path, json={**body, "k": 10}).json()
        assert r["run_id"] == run and r["fallback"] is False and _ids(r) == uncapped
        for cap in (1, 2):
            r = client.post(path, json={**body, "k": 10, "max_per_artist": cap}).json()
            assert r["run_id"] == run and r["fallback"] is False, r
            assert _ids(r) == capped(ranked, skip, cap), (path, cap, r)
            assert len(r["items"]) == 10 and most_per_artist(_ids(r)) <= cap, (path, cap, r)


def test_issue18_session_mixture_served_over_http(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """Issue 18 (next song): an activated ``sessionmix`` run answers ``POST /sessions/next``
    with exactly its own ranking, the listener's history included (the mixture is the one
    session model that uses ``user_id``); the session run active before is restored."""
    from gnn import get_active, load_next_song_predictor, set_active
    from gnn.graph._export import export_snapshot
    from gnn.sessions._pipeline import compare_session_models, prepare_sessions

    before = get_active(world.runs_root, task="session")
    snap = export_snapshot(driver, neo4j_settings.neo4j_database)
    res = compare_session_models(
        prepare_sessions(snap),
        ["sessionmix"],
        overrides={"sessionmix": {"steps": 30, "taus": (0.1,)}},
        runs_root=world.runs_root,
        activate=True,
    )
    run_id = res.run_ids["sessionmix"]
    try:
        deadline = time.monotonic() + 30
        while (client.get("/models/active").json().get("session") or {}).get("run_id") != run_id:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        user = str(snap.user_ids[snap.play_user[0]])
        seeds = [str(s) for s in snap.song_ids[snap.play_song[:2]]]
        mix = load_next_song_predictor(world.runs_root)
        for body in ({"recent_song_ids": seeds}, {"recent_song_ids": seeds, "user_id": user}):
            want = mix.predict_next(**body, k=5)  # type: ignore[arg-type]
            r = client.post("/sessions/next", json={**body, "k": 5}).json()
            assert (r["model"], r["run_id"], r["fallback"]) == ("sessionmix", run_id, False)
            assert _ids(r) == [s for s, _ in want]
            assert [i["score"] for i in r["items"]] == pytest.approx([v for _, v in want])
            assert not set(_ids(r)) & set(seeds)
    finally:
        if before is not None:
            set_active(world.runs_root, before, task="session")


# -- metrics (issue 14) --------------------------------------------------------------------------
def test_metrics(client: httpx.Client, world: World) -> None:
    """Issue 14 item 5: Prometheus text at /metrics, per route template."""
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(2):
        client.get(f"/users/{world.fresh_user}/recommendations", params={"k": 3})
    client.get("/nothing/here")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = [s for fam in text_string_to_metric_families(r.text) for s in fam.samples]

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    route = "/users/{user_id}/recommendations"
    assert value("spotify_engine_http_requests_total", method="GET", route=route, status="200") >= 2
    assert value("spotify_engine_http_requests_total", route="<unmatched>", status="404") >= 1
    assert value("spotify_engine_http_request_duration_seconds_count", route=route) >= 2
    assert value("spotify_engine_http_request_duration_seconds_bucket", route=route, le="+Inf") >= 2
    assert not [s for s in samples if world.fresh_user in s.labels.get("route", "")]
    assert value("spotify_engine_cache_lookups_total", kind="recs", result="hit") >= 1
    assert value("spotify_engine_cache_lookups_total", kind="recs", result="miss") >= 1
    assert value("spotify_engine_active_run", task="user", run_id=world.run_id) == 1
    assert value("spotify_engine_model_loaded", task="user") == 1
    assert "# TYPE spotify_engine_neo4j_errors_total counter" in r.text
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
