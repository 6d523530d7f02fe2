"""The plays loader (issue 3, loader speed): what it counts, and chunks that are partly loaded.

The ingest benchmark reports relationships created (the server's counters) and updated
(aggregates added to); both are checked against the graph itself here. A chunk that mixes
loaded and new sessions must add every aggregate exactly once, whichever chunk a session
lands in: loading half of the sessions and then all of them gives the graph of one load.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import neo4j
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphdb import wipe_graph
from ingest import Loader, SyntheticConfig, generate
from ingest._tables import SCHEMAS
from spotify_engine.settings import Settings

try:
    from tests._graph_dump import dump as _dump
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from _graph_dump import dump as _dump  # type: ignore[no-redef]

pytestmark = pytest.mark.neo4j

SMALL = SyntheticConfig(users=12, songs=90, artists=10, days=5, mean_plays_per_user=20, seed=3)


def _rows(driver: neo4j.Driver, db: str, text: str) -> list[dict]:
    records, _, _ = driver.execute_query(text, database_=db)
    return [r.data() for r in records]


def _relationship_count(driver: neo4j.Driver, db: str) -> int:
    return _rows(driver, db, "MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic tables, and a copy whose plays are every other session of them."""
    root = tmp_path_factory.mktemp("loader-counts")
    whole = root / "whole"
    generate(SMALL, whole)
    part = root / "part"
    part.mkdir()
    for name in SCHEMAS:
        src = whole / f"{name}.parquet"
        if src.exists() and name != "plays":
            shutil.copy(src, part / src.name)
    plays = pq.read_table(whole / "plays.parquet").to_pandas()
    ids = sorted(plays["session_id"].unique())
    half = plays[plays["session_id"].isin(ids[::2])]
    pq.write_table(
        pa.Table.from_pandas(
            half, schema=pq.read_schema(whole / "plays.parquet"), preserve_index=False
        ),
        part / "plays.parquet",
    )
    return whole, part


def test_partly_loaded_chunks_add_each_session_once(
    graph: neo4j.Driver, neo4j_settings: Settings, folders: tuple[Path, Path]
) -> None:
    whole, part = folders
    db = neo4j_settings.neo4j_database
    plays = pq.read_table(whole / "plays.parquet").to_pandas()
    n_sessions = plays["session_id"].nunique()

    wipe_graph(graph, db)
    once = Loader(graph, db, batch_size=60).load(whole, source="synthetic")
    expected = _dump(graph, db)
    assert once.sessions_new == n_sessions

    wipe_graph(graph, db)
    first = Loader(graph, db, batch_size=60).load(part, source="synthetic")
    second = Loader(graph, db, batch_size=60).load(whole, source="synthetic")
    assert first.sessions_new == (n_sessions + 1) // 2
    assert second.sessions_existing == first.sessions_new
    assert second.sessions_new == n_sessions - first.sessions_new
    assert _dump(graph, db) == expected

    # The right answer from the table itself: LISTENED.plays counts plays per user and song.
    truth = plays.groupby(["user_id", "song_id"]).size()
    got = _rows(
        graph,
        db,
        "MATCH (u:User)-[l:LISTENED]->(s:Song) RETURN u.id AS u, s.id AS s, l.plays AS n",
    )
    assert {(r["u"], r["s"]): r["n"] for r in got} == {k: int(v) for k, v in truth.items()}


def test_aggregates_over_many_small_chunks_match_the_table(
    graph: neo4j.Driver, neo4j_settings: Settings, folders: tuple[Path, Path]
) -> None:
    """Tiny chunks: most pairs recur in later chunks of the same run, so the loader's choice
    between CREATE (a pair it knows is new) and MERGE (one it may have made) is exercised on
    every chunk. Each pair must exist once, with the table's totals."""
    whole, _ = folders
    db = neo4j_settings.neo4j_database
    plays = pq.read_table(whole / "plays.parquet").to_pandas()
    wipe_graph(graph, db)
    Loader(graph, db, batch_size=15).load(whole, source="synthetic")

    listened = _rows(
        graph,
        db,
        "MATCH (u:User)-[l:LISTENED]->(s:Song) RETURN u.id AS u, s.id AS s, l.plays AS n",
    )
    truth = plays.groupby(["user_id", "song_id"]).size()
    assert len(listened) == len(truth)  # no pair twice
    assert {(r["u"], r["s"]): r["n"] for r in listened} == {k: int(v) for k, v in truth.items()}

    ordered = plays.sort_values(["session_id", "pos"])
    nxt = ordered.shift(-1)
    same = ordered["session_id"].eq(nxt["session_id"])
    pairs = pd.DataFrame({"a": ordered["song_id"][same], "b": nxt["song_id"][same]})
    want = pairs.groupby(["a", "b"]).size()
    followed = _rows(
        graph,
        db,
        "MATCH (a:Song)-[f:FOLLOWED_BY]->(b:Song) RETURN a.id AS a, b.id AS b, f.count AS n",
    )
    assert len(followed) == len(want)
    assert {(r["a"], r["b"]): r["n"] for r in followed} == {k: int(v) for k, v in want.items()}


def test_created_relationships_are_the_servers_count(
    graph: neo4j.Driver, neo4j_settings: Settings, folders: tuple[Path, Path]
) -> None:
    whole, _ = folders
    db = neo4j_settings.neo4j_database
    wipe_graph(graph, db)
    loader = Loader(graph, db, batch_size=60)
    result = loader.load(whole, source="synthetic")
    assert result.relationships_created == _relationship_count(graph, db) > 0
    # Aggregates met again in a later chunk are updated, not created.
    assert result.relationships_updated == result.relationships - result.relationships_created
    assert result.relationships_updated > 0

    forced = loader.load(whole, source="synthetic", force=True)
    contains = _rows(graph, db, "MATCH ()-[r:CONTAINS]->() RETURN count(r) AS n")[0]["n"]
    assert forced.sessions_new == 0
    assert forced.relationships_created == contains  # playlists' tracks are replaced
    assert _relationship_count(graph, db) == result.relationships_created


def test_aggregates_are_sorted_and_sum_the_chunk() -> None:
    chunk = pd.DataFrame(
        {
            "user_id": ["U2", "U2", "U2", "U1", "U1"],
            "song_id": ["S2", "S1", "S2", "S9", "S1"],
            "session_id": ["b", "b", "b", "a", "a"],
            "pos": [0, 1, 2, 0, 1],
            "ts": [10, 20, 30, 1, 2],
            "ms_played": [5.0, float("nan"), 7.0, float("nan"), float("nan")],
            "skipped": [False, True, True, False, False],
        }
    )
    # internal node ids, as Loader._node_ids adds them: U1 -> 1, U2 -> 2, S<n> -> 10 + n
    chunk["unid"] = chunk["user_id"].str[1:].astype(int)
    chunk["snid"] = chunk["song_id"].str[1:].astype(int) + 10
    listened, transitions = Loader._aggregates(chunk)
    assert {k: v.tolist() for k, v in listened.items()} == {
        "user": [1, 1, 2, 2],
        "song": [11, 19, 11, 12],
        "plays": [1, 1, 1, 2],
        "ms_played": [None, None, None, 12],
        "skips": [0, 0, 1, 1],
        "first_at": [2, 1, 20, 10],
        "last_at": [2, 1, 20, 30],
    }
    # Transitions stay inside a session: a -> b is not one (different sessions).
    assert {k: v.tolist() for k, v in transitions.items()} == {
        "a": [11, 12, 19],
        "b": [12, 11, 11],
        "count": [1, 1, 1],
    }
