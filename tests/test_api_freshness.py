"""Issue 14 item 4 over real HTTP against the real Neo4j: ``max_per_artist`` caps the songs of
one artist in a user's list before the cut, on every path (precomputed, live, popular), with
and without the other rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import neo4j
import pytest
from _api_world import World, build_world, run_server, server_env

from api.services.recommendations import cap_per_artist
from graphdb import wipe_graph
from spotify_engine.settings import Settings

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(
    driver: neo4j.Driver, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> World:
    wipe_graph(driver, neo4j_settings.neo4j_database)
    return build_world(driver, neo4j_settings, tmp_path_factory.mktemp("fresh-world"))


@pytest.fixture(scope="module")
def client(
    world: World, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    env = server_env(
        neo4j_settings,
        SPOTIFY_ENGINE_RUNS_DIR=str(world.runs_root),
        SPOTIFY_ENGINE_API_KEY="test-key-" + "0123456789abcdef",
        SPOTIFY_ENGINE_API_LIVE_EXPLAIN="true",
    )
    log = tmp_path_factory.mktemp("fresh-log") / "server.log"
    with run_server(env, log) as server, httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


def _artists(driver: neo4j.Driver, db: str) -> dict[str, str]:
    """``{song_id: artist_id}``."""
    with driver.session(database=db) as s:
        return {
            r["s"]: r["a"]
            for r in s.run("MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS s, a.id AS a")
        }


def test_cap_keeps_order_and_skips_full_artists() -> None:
    items = [("s1", "A"), ("s2", "A"), ("s3", "B"), ("s4", "A"), ("s5", None), ("s6", "C")]
    got = cap_per_artist(items, lambda x: x[1], 1, 4)
    assert [s for s, _ in got] == ["s1", "s3", "s5", "s6"]
    assert [s for s, _ in cap_per_artist(items, lambda x: x[1], 2, 3)] == ["s1", "s2", "s3"]
    assert cap_per_artist(items, lambda x: x[1], None, 3) == items[:3]


def test_max_per_artist_on_every_path(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """k songs come back, no artist more than ``max_per_artist`` times, ranks 1..k."""
    artists = _artists(driver, neo4j_settings.neo4j_database)
    for user, source in (
        (world.fresh_user, None),
        (world.live_user, "live"),
        (world.empty_user, "popular"),
    ):
        for cap in (1, 2):
            r = client.get(
                f"/users/{user}/recommendations", params={"k": 10, "max_per_artist": cap}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            ids = [i["song_id"] for i in body["items"]]
            assert len(ids) == 10, body
            assert [i["rank"] for i in body["items"]] == list(range(1, 11))
            counts = Counter(artists[s] for s in ids)
            assert max(counts.values()) <= cap, (user, cap, counts, body["source"], ids)
            if source is not None:
                assert body["source"] == source


def test_rules_and_max_per_artist_together_still_give_k(
    client: httpx.Client, world: World, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    artists = _artists(driver, neo4j_settings.neo4j_database)
    for user in (world.fresh_user, world.live_user, world.empty_user):
        url = f"/users/{user}/recommendations"
        base = client.get(url, params={"k": 5, "explain": "false"}).json()
        song = base["items"][0]["song_id"]
        banned = artists[base["items"][1]["song_id"]]
        r = client.get(
            url,
            params={
                "k": 5,
                "explain": "false",
                "max_per_artist": 1,
                "exclude_songs": [song],
                "exclude_artists": [banned],
            },
        )
        assert r.status_code == 200, r.text
        ids = [i["song_id"] for i in r.json()["items"]]
        assert len(ids) == 5 and song not in ids
        got = [artists[s] for s in ids]
        assert banned not in got and len(set(got)) == 5, got


def test_max_per_artist_out_of_range_is_a_problem(client: httpx.Client, world: World) -> None:
    r = client.get(f"/users/{world.fresh_user}/recommendations", params={"max_per_artist": -1})
    assert r.status_code == 422
    assert "max_per_artist" in r.text
