"""Issue 14 item 1 over real HTTP against the real Neo4j: after plays are posted, a user's next
recommendations come from their current plays (``fold_in``), without retraining, for a known
user and for one the events endpoint just created, with true evidence; songs the model does
not know are ignored and listed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
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

KEY = "test-key-" + "foldin-0123456789"


@dataclass
class FoldWorld:
    base: World
    run_id: str
    users: list[str]
    written: list[str]
    artists: dict[str, str]


@pytest.fixture(scope="module")
def world(
    driver: neo4j.Driver, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> FoldWorld:
    from gnn.graph import export_snapshot
    from gnn.users import prepare, train_and_write_back

    db = neo4j_settings.neo4j_database
    wipe_graph(driver, db)
    base = build_world(driver, neo4j_settings, tmp_path_factory.mktemp("fold-world"))
    snap = export_snapshot(driver, db)
    even = np.arange(0, snap.num_users, 2)
    out = train_and_write_back(
        prepare(snap), "ease", runs_root=base.runs_root, driver=driver, database=db, users=even
    )  # the active run is now EASE^R, written back for the even users
    records = driver.execute_query(
        "MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS s, a.id AS a", database_=db
    ).records
    return FoldWorld(
        base=base,
        run_id=out.train.run.run_id,
        users=[str(u) for u in snap.user_ids],
        written=[str(snap.user_ids[i]) for i in even],
        artists={r["s"]: r["a"] for r in records},
    )


@pytest.fixture(scope="module")
def client(
    world: FoldWorld, neo4j_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    env = server_env(
        neo4j_settings,
        SPOTIFY_ENGINE_RUNS_DIR=str(world.base.runs_root),
        SPOTIFY_ENGINE_API_KEY=KEY,
    )
    log: Path = tmp_path_factory.mktemp("fold-log") / "server.log"
    with run_server(env, log) as server, httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


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


def _played(driver: neo4j.Driver, db: str, user: str) -> set[str]:
    records = driver.execute_query(
        "MATCH (:User {id: $u})-[:LISTENED]->(s:Song) RETURN s.id AS s", u=user, database_=db
    ).records
    return {r["s"] for r in records}


def test_a_new_user_gets_personal_explained_songs_of_the_artist_they_played(
    client: httpx.Client, world: FoldWorld, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    user = "U_FOLD_NEW"
    assert client.get(f"/users/{user}/recommendations").json()["source"] == "popular"
    by_artist = Counter(world.artists.values())
    artist = next(a for a, n in by_artist.most_common() if n >= 8)
    songs = sorted(s for s, a in world.artists.items() if a == artist)
    _post(client, user, songs[:4], "fold-new-1")

    body = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert body["source"] == "fold_in" and body["cold_start"] is False
    assert body["run_id"] == world.run_id and body["model"] == "ease"
    assert body["ignored"] == [] and len(body["items"]) == 10
    ids = [i["song_id"] for i in body["items"]]
    assert not set(ids) & set(songs[:4])  # played songs are never recommended
    assert set(ids) & set(songs[4:]), "the artist's other songs are not in the top 10"
    # Evidence is the user's real plays, strongest first, and every reason names it.
    for item in body["items"]:
        ev = item["evidence"]
        assert ev and all(e["kind"] == "played" and e["id"] in songs[:4] for e in ev)
        assert [e["weight"] for e in ev] == sorted((e["weight"] for e in ev), reverse=True)
        assert item["reason"]


def test_a_known_users_list_follows_their_new_plays(
    client: httpx.Client, world: FoldWorld, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    user = world.written[1]
    before = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert before["source"] == "precomputed" and before["run_id"] == world.run_id
    new = [i["song_id"] for i in before["items"][:3]]  # they now play their top 3
    _post(client, user, new, "fold-known-1")
    after = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert after["source"] == "fold_in" and len(after["items"]) == 10
    ids = [i["song_id"] for i in after["items"]]
    assert not set(ids) & _played(driver, db, user)
    # Exactly what the trained run gives for the user's listening as it is in the graph now.
    from gnn.core import resolve_run
    from gnn.users import fold_in, load_trained

    rec, snap = load_trained(resolve_run(world.base.runs_root, "user", world.run_id))
    records = driver.execute_query(
        "MATCH (:User {id: $u})-[l:LISTENED]->(s:Song) RETURN s.id AS s, l.plays AS n",
        u=user,
        database_=db,
    ).records
    expected = fold_in(rec, snap, user, {r["s"]: r["n"] for r in records}, 10)
    assert ids == [r.song_id for r in expected.rows]
    assert [i["score"] for i in after["items"]] == pytest.approx([r.score for r in expected.rows])
    assert any(e["id"] in new for i in after["items"] for e in i["evidence"])  # new plays count
    # A user without new plays keeps the precomputed list.
    other = world.written[2]
    assert client.get(f"/users/{other}/recommendations").json()["source"] == "precomputed"


def test_songs_the_model_does_not_know_are_ignored_and_listed(
    client: httpx.Client, world: FoldWorld, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    driver.execute_query(
        "MERGE (s:Song {id: 'S_AFTER_TRAINING'}) SET s.name = 'Released after training'",
        database_=db,
    )
    user = "U_FOLD_IGNORED"
    known = sorted(world.artists)[:3]
    _post(client, user, [*known, "S_AFTER_TRAINING"], "fold-ignored-1")
    body = client.get(f"/users/{user}/recommendations", params={"k": 5}).json()
    assert body["source"] == "fold_in" and body["ignored"] == ["S_AFTER_TRAINING"]
    assert len(body["items"]) == 5
    # Rules still apply before the cut on the fold-in path.
    banned = body["items"][0]["song_id"]
    again = client.get(
        f"/users/{user}/recommendations", params={"k": 5, "exclude_songs": banned}
    ).json()
    assert again["source"] == "fold_in" and banned not in [i["song_id"] for i in again["items"]]
    assert len(again["items"]) == 5
    capped = client.get(
        f"/users/{user}/recommendations", params={"k": 5, "max_per_artist": 1}
    ).json()
    artists = [world.artists.get(i["song_id"]) for i in capped["items"]]
    assert len(capped["items"]) == 5 and len(set(artists)) == 5
