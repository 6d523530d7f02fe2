"""Bulk import (neo4j-admin) against the online loader: one folder must give one graph.

A synthetic data set, roughened with the defects the loader has rules for (duplicate entity
rows, stubs, unknown references, unknown ``ms_played``, ties in ``pos``, a session with two
users, null and infinite properties, names with quotes, commas, line breaks, emoji, ``$`` and
backticks), is bulk-imported, dumped, wiped, loaded with :class:`ingest.Loader` and dumped
again: the dumps must be equal, types included (``1`` is not ``1.0``).

The bulk import replaces the whole database of the test server and restarts it, so these tests
run only against the locally managed server (skipped for ``NEO4J_URI`` or Docker) and leave
it running with the schema applied.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import neo4j
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphdb import LocalServer, apply_schema, forget_bookmarks, graph_stats, wipe_graph
from ingest import Loader, LoadResult, SyntheticConfig, generate
from ingest._bulk import BulkResult, bulk_import, ensure_bulk_target
from ingest._tables import SCHEMAS
from spotify_engine.errors import IngestError
from spotify_engine.settings import Settings

try:
    from tests import _dirty
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import _dirty  # type: ignore[no-redef]

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

ODD = (
    *_dirty.ODD_NAMES,
    _dirty.NEWLINE_NAME,
    "cr\r\nlf and a lone\rcr",
    "tab\there",
    'a,b\n"c", ${x} `y` 🎧',
    "",
)


# -- data -----------------------------------------------------------------------------------------


def _write(folder: Path, name: str, df: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(df, schema=SCHEMAS[name], preserve_index=False)
    # Without pandas metadata, as readers write them: an int column with nulls reads as float.
    pq.write_table(table.replace_schema_metadata(None), folder / f"{name}.parquet")


def _rough(folder: Path) -> dict[str, dict[str, str]]:
    """Add the defects to a generated folder; returns the odd names given per label and id."""
    t = {name: pq.read_table(folder / f"{name}.parquet").to_pandas() for name in SCHEMAS}
    names: dict[str, dict[str, str]] = {}

    def rename(table: str, key: str, label: str, offset: int) -> None:
        df = t[table]
        ids = df[key].iloc[offset : offset + len(ODD)].tolist()
        df.loc[df[key].isin(ids), "name"] = [ODD[ids.index(i)] for i in df[key] if i in ids]
        names[label] = dict(zip(ids, ODD, strict=True))

    rename("songs", "song_id", "Song", 0)
    rename("artists", "artist_id", "Artist", 3)
    rename("users", "user_id", "User", 1)
    rename("playlists", "playlist_id", "Playlist", 0)
    rename("albums", "album_id", "Album", 2)

    songs = t["songs"]
    songs["duration_ms"] = songs["duration_ms"].astype("Int64")
    songs.loc[5, "duration_ms"] = pd.NA  # an int column with a null reaches the loader as float
    songs.loc[6, "popularity"] = float("nan")
    songs.loc[7, "loudness"] = float("-inf")
    songs.loc[8, "artist_id"] = "A-unknown"
    songs.loc[9, "album_id"] = None
    dup = songs.iloc[[10]].assign(name="second row of a duplicate song")
    t["songs"] = pd.concat([songs, dup], ignore_index=True)

    users = t["users"]
    users.loc[2, "activity_level"] = None
    dup = users.iloc[[3]].assign(name="second row of a duplicate user")
    t["users"] = pd.concat([users, dup], ignore_index=True)
    t["artists"] = pd.concat(
        [t["artists"], t["artists"].iloc[[0]].assign(name="duplicate artist")], ignore_index=True
    )
    albums = t["albums"]
    albums.loc[0, "artist_id"] = "A-unknown"
    albums.loc[1, "name"] = None

    sg = t["song_genres"]
    extra = pd.DataFrame(
        {
            "song_id": [sg.song_id[0], sg.song_id[1], "S-ghost", sg.song_id[2]],
            "genre_id": [sg.genre_id[0], sg.genre_id[1], sg.genre_id[0], "G-unknown"],
            "weight": [0.125, None, 0.5, 0.5],  # repeats: the last weight wins, None removes it
        }
    )
    t["song_genres"] = pd.concat([sg, extra], ignore_index=True)

    plays = t["plays"]
    plays["ms_played"] = plays["ms_played"].astype("Int64")
    plays.loc[plays.index % 7 == 3, "ms_played"] = pd.NA
    first = plays.session_id[0]
    in_first = plays.index[plays.session_id == first]
    plays.loc[in_first[1], "pos"] = plays.pos[in_first[0]]  # a tie in pos: file order decides
    second = plays.session_id[in_first[-1] + 1]
    in_second = plays.index[plays.session_id == second]
    other = next(u for u in plays.user_id if u != plays.user_id[in_second[0]])
    plays.loc[in_second[-1], "user_id"] = other  # a session with two users: HAD from the first
    stub = pd.DataFrame(
        {
            "user_id": ["U-stub", "U-stub", "U-stub"],
            "song_id": ["S-stub", "S-stub", plays.song_id[0]],
            "session_id": ["U-stub-s0"] * 3,
            "pos": [0, 1, 2],
            "ts": [1_700_000_000_000, 1_700_000_100_000, 1_700_000_200_000],
            "ms_played": pd.array([None, None, 5_000], dtype="Int64"),
            "skipped": [False, True, True],
        }
    )
    t["plays"] = pd.concat([plays, stub], ignore_index=True)

    pls = t["playlists"]
    pls.loc[1, "user_id"] = None
    pls["num_followers"] = pls["num_followers"].astype("Int64")
    pls.loc[2, "num_followers"] = pd.NA
    t["playlists"] = pd.concat(
        [pls, pls.iloc[[3]].assign(name="duplicate playlist")], ignore_index=True
    )
    tracks = t["playlist_tracks"]
    extra = pd.DataFrame(
        {
            "playlist_id": ["PL-stub", "PL-stub", tracks.playlist_id[0]],
            "song_id": ["S-stub2", tracks.song_id[0], tracks.song_id[0]],
            "pos": [0, 1, int(tracks.pos[0])],  # the last one repeats a track row
        }
    )
    t["playlist_tracks"] = pd.concat([tracks, extra], ignore_index=True)
    for name, df in t.items():
        _write(folder, name, df)
    return names


# -- graph dump -----------------------------------------------------------------------------------


def _rows(driver: neo4j.Driver, db: str, text: str) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(text, database_=db, routing_=neo4j.RoutingControl.READ)
    return [r.data() for r in records]


def _key(x: Any) -> str:
    return json.dumps(x, sort_keys=True, ensure_ascii=False)


def dump(driver: neo4j.Driver, db: str) -> dict[str, Any]:
    """Counts per label and type, every node and relationship with its properties (as JSON,
    so 1 and 1.0 differ), and the IngestBatch without the fields that may differ."""
    labels = _rows(
        driver,
        db,
        # the online loader's IngestLock (taken by every loader transaction) aside
        "MATCH (n) WHERE NOT n:IngestLock UNWIND labels(n) AS l RETURN l, count(*) AS n",
    )
    types = _rows(driver, db, "MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n")
    nodes = _rows(
        driver,
        db,
        "MATCH (n) WHERE NOT n:IngestBatch AND NOT n:IngestLock "
        "RETURN labels(n) AS labels, properties(n) AS props",
    )
    rels = _rows(
        driver,
        db,
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, labels(a) AS la, a.id AS a, "
        "labels(b) AS lb, b.id AS b, properties(r) AS props",
    )
    batch = _rows(driver, db, "MATCH (b:IngestBatch) RETURN properties(b) AS props")
    for row in batch:
        row["props"].pop("loaded_at")
        row["props"].pop("folder")
    return {
        "labels": {r["l"]: r["n"] for r in labels},
        "types": {r["t"]: r["n"] for r in types},
        "nodes": sorted(map(_key, nodes)),
        "relationships": sorted(map(_key, rels)),
        "batch": batch,
    }


def _differences(a: list[str], b: list[str], n: int = 5) -> str:
    ca, cb = Counter(a), Counter(b)
    only_a, only_b = list((ca - cb).elements())[:n], list((cb - ca).elements())[:n]
    return f"only bulk: {only_a}\nonly online: {only_b}" if only_a or only_b else ""


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local(neo4j_settings: Settings) -> Settings:
    if not neo4j_settings.uses_local_server:
        pytest.skip("bulk import replaces the database of the local server only")
    return neo4j_settings


@pytest.fixture(scope="module")
def rough(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("bulk") / "tables"
    generate(SyntheticConfig(users=50, songs=300, artists=40), folder)
    return folder, _rough(folder)


@pytest.fixture(scope="module")
def both(
    local: Settings, driver: neo4j.Driver, rough: tuple[Path, dict[str, dict[str, str]]]
) -> dict[str, Any]:
    """Bulk import, dump; wipe, online load, dump. The graph holds the online load after."""
    folder, _ = rough
    db = local.neo4j_database
    wipe_graph(driver, db)
    bulk = bulk_import(folder, local, driver=driver, source="synthetic")
    bulk_dump = dump(driver, db)
    bulk_schema = sorted(str(r["name"]) for r in _rows(driver, db, "SHOW CONSTRAINTS"))
    wipe_graph(driver, db)
    online = Loader(driver, db).load(folder, source="synthetic")
    return {
        "bulk": bulk,
        "online": online,
        "bulk_dump": bulk_dump,
        "online_dump": dump(driver, db),
        "bulk_schema": bulk_schema,
        "online_schema": sorted(str(r["name"]) for r in _rows(driver, db, "SHOW CONSTRAINTS")),
    }


# -- tests ----------------------------------------------------------------------------------------


def test_bulk_and_online_give_the_same_graph(both: dict[str, Any]) -> None:
    bulk, online = both["bulk_dump"], both["online_dump"]
    assert bulk["labels"] == online["labels"]
    assert bulk["types"] == online["types"]
    assert set(bulk["types"]) == {
        "BY",
        "ON",
        "IN_GENRE",
        "HAD",
        "PLAYED",
        "LISTENED",
        "FOLLOWED_BY",
        "CREATED",
        "CONTAINS",
    }
    assert bulk["nodes"] == online["nodes"], _differences(bulk["nodes"], online["nodes"])
    assert bulk["relationships"] == online["relationships"], _differences(
        bulk["relationships"], online["relationships"]
    )
    assert bulk["batch"] == online["batch"] and len(bulk["batch"]) == 1
    assert both["bulk_schema"] == both["online_schema"] and both["bulk_schema"]


def test_the_roughening_reached_the_graph(both: dict[str, Any]) -> None:
    """The defects are there to be handled alike: make sure they are in the compared graph."""
    rels = [json.loads(r) for r in both["bulk_dump"]["relationships"]]
    nodes = [json.loads(n) for n in both["bulk_dump"]["nodes"]]
    songs = {n["props"]["id"]: n["props"] for n in nodes if n["labels"] == ["Song"]}
    assert songs["S-stub"] == {"id": "S-stub"} and songs["S-stub2"] == {"id": "S-stub2"}
    assert any(isinstance(s.get("duration_ms"), float) for s in songs.values())
    assert any(s.get("loudness") == float("-inf") for s in songs.values())
    played = [r["props"] for r in rels if r["type"] == "PLAYED"]
    assert any("ms_played" not in p for p in played) and any("ms_played" in p for p in played)
    stub = [r for r in rels if r["type"] == "LISTENED" and r["a"] == "U-stub"]
    assert {r["b"]: r["props"].get("ms_played") for r in stub}["S-stub"] is None
    assert any(r["a"] == r["b"] for r in rels if r["type"] == "FOLLOWED_BY")
    weights = [r["props"] for r in rels if r["type"] == "IN_GENRE"]
    assert {"weight": 0.125} in weights and {} in weights


def test_bulk_result_counts_like_the_loader(both: dict[str, Any]) -> None:
    bulk: BulkResult = both["bulk"]
    online: LoadResult = both["online"]
    dumped = both["bulk_dump"]
    assert bulk.rows == online.rows
    assert bulk.sessions_new == online.sessions_new > 0
    assert bulk.nodes == sum(dumped["labels"].values()) - 1  # the IngestBatch is recorded after
    assert bulk.relationships == sum(dumped["types"].values())
    assert set(bulk.seconds) == {"csv", "stop", "import", "start", "schema", "record"}
    assert set(bulk.rates) == {"import", "offline", "total"}
    for rate in bulk.rates.values():
        assert rate["rows_per_s"] > 0 and rate["relationships_per_s"] > 0
    assert bulk.rates["import"]["rows_per_s"] > bulk.rates["total"]["rows_per_s"]


def test_odd_names_survive_the_csv_round_trip(
    both: dict[str, Any], rough: tuple[Path, dict[str, dict[str, str]]]
) -> None:
    _, given = rough
    nodes = [json.loads(n) for n in both["bulk_dump"]["nodes"]]
    found: dict[str, dict[str, str | None]] = {}
    for n in nodes:
        found.setdefault(n["labels"][0], {})[n["props"]["id"]] = n["props"].get("name")
    for label, names in given.items():
        for node_id, name in names.items():
            assert found[label][node_id] == name, (label, node_id)
    assert "" in {found["Song"][i] for i in given["Song"]}  # an empty string is not a null


def test_refuses_a_database_with_nodes(
    local: Settings, driver: neo4j.Driver, both: Any, rough: tuple[Path, Any]
) -> None:
    db = local.neo4j_database
    before = graph_stats(driver, db)
    assert before.nodes > 0
    with pytest.raises(IngestError) as err:
        bulk_import(rough[0], local, driver=driver)
    msg = str(err.value)
    assert f"holds {before.nodes:,} nodes" in msg and "only fills an empty one" in msg
    assert err.value.hint and "--bulk" in err.value.hint and "force_overwrite" in err.value.hint
    assert graph_stats(driver, db) == before


def test_cli_bulk_refuses_before_reading(
    local: Settings, driver: neo4j.Driver, both: Any, tmp_path: Path
) -> None:
    env = {**os.environ, "COLUMNS": "1000", "SPOTIFY_ENGINE_HOME": str(tmp_path / "home")}
    env.pop("SPOTIFY_ENGINE_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()"]
        + ["ingest", "synthetic", "--users", "5", "--songs", "20", "--artists", "4", "--bulk"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: bulk import replaces"), proc.stderr
    assert "try: load without --bulk" in lines[0]
    assert not (tmp_path / "home" / "ingest").exists()  # nothing generated


def test_refuses_a_remote_server(driver: neo4j.Driver) -> None:
    remote = Settings(neo4j_uri="bolt://db.example:7687", neo4j_password="x-not-default")
    with pytest.raises(IngestError, match="locally managed"):
        ensure_bulk_target(remote, driver)
    other = Settings(neo4j_database="music")
    with pytest.raises(IngestError, match="default database"):
        ensure_bulk_target(other, driver)


def test_failed_import_leaves_an_empty_running_database(
    local: Settings, driver: neo4j.Driver, rough: tuple[Path, dict[str, dict[str, str]]]
) -> None:
    folder, _ = rough
    db = local.neo4j_database
    assert graph_stats(driver, db).nodes > 0
    try:
        with pytest.raises(IngestError) as err:
            # Read as tab-separated, a quoted first field runs into the next: the tool fails.
            bulk_import(
                folder,
                local,
                driver=driver,
                force_overwrite=True,
                import_options=["--delimiter=TAB"],
            )
        msg = str(err.value)
        assert msg.startswith("neo4j-admin database import failed (exit ")
        assert "the database was left empty" in msg
        assert ".csv" in msg.splitlines()[0]  # the tool's reason names the file it choked on
        assert len(msg.splitlines()) > 1  # the tool's own last lines follow
        assert LocalServer(local).status().running
        assert graph_stats(driver, db).nodes == 0
    finally:
        apply_schema(driver, db)
        work = LocalServer(local).home / "import"
        for kept in work.glob("bulk-*"):
            shutil.rmtree(kept)


def test_cli_bulk_into_an_empty_database(
    local: Settings, driver: neo4j.Driver, tmp_path: Path
) -> None:
    db = local.neo4j_database
    wipe_graph(driver, db)
    env = {**os.environ, "COLUMNS": "1000", "SPOTIFY_ENGINE_HOME": str(tmp_path / "home")}
    env.pop("SPOTIFY_ENGINE_DEBUG", None)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()"]
        + ["ingest", "synthetic", "--users", "8", "--songs", "40", "--artists", "5"]
        + ["--days", "3", "--bulk", "--out", str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Another process replaced the store: this driver's bookmarks name the old one.
    forget_bookmarks(driver, db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "neo4j-admin import" in proc.stdout and "rows/s" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["load"]["nodes"] > 0 and report["load"]["rates"]["import"]["rows_per_s"] > 0
    stats = graph_stats(driver, db)
    assert stats.labels["IngestBatch"] == 1 and stats.relationships["PLAYED"] > 0
    assert _rows(driver, db, "SHOW CONSTRAINTS")


# -- every source on both paths (issue 16: --bulk crashed on every source without genres) -----


_CLEAN = {
    "lastfm": lambda tmp: _dirty.write_lastfm_clean(tmp / "plays.tsv"),
    "kaggle": lambda tmp: _dirty.write_kaggle_clean(tmp / "spotify_dataset.csv"),
    "mpd": lambda tmp: _dirty.write_mpd_clean(tmp / "mpd"),
    "sessions": lambda tmp: _dirty.write_sessions_clean(tmp / "sessions"),
}


@pytest.mark.parametrize("source", sorted(_CLEAN))
def test_every_source_bulk_imports_like_the_online_loader(
    source: str, local: Settings, driver: neo4j.Driver, tmp_path: Path
) -> None:
    from ingest import ingest

    path = _CLEAN[source](tmp_path)
    folder = ingest(source, path, settings=local, out_dir=tmp_path / "tables", dry_run=True).folder
    db = local.neo4j_database
    wipe_graph(driver, db)
    bulk = bulk_import(folder, local, driver=driver, source=source)
    bulk_dump = dump(driver, db)
    wipe_graph(driver, db)
    online = Loader(driver, db).load(folder, source=source)
    online_dump = dump(driver, db)
    assert bulk.rows == online.rows and sum(bulk.rows.values()) > 0
    assert bulk_dump["labels"] == online_dump["labels"]
    assert bulk_dump["types"] == online_dump["types"]
    assert bulk_dump["nodes"] == online_dump["nodes"], _differences(
        bulk_dump["nodes"], online_dump["nodes"]
    )
    assert bulk_dump["relationships"] == online_dump["relationships"], _differences(
        bulk_dump["relationships"], online_dump["relationships"]
    )


def test_empty_tables_of_a_source_without_genres_make_node_files() -> None:
    """The crash of issue 16 without a server: pandas' Arrow-backed string columns (empty for
    a source without genres or albums) convert to chunked arrays."""
    from ingest._bulk import _nodes

    for name, key, props in [
        ("genres", "genre_id", ["name", "popularity"]),
        ("albums", "album_id", ["name"]),
    ]:
        empty = SCHEMAS[name].empty_table().to_pandas()
        table = _nodes(name.title(), empty, key, props, stubs=["x"])
        assert table.num_rows == 1 and table.column(0).to_pylist() == ["x"]


# -- long names (issue 16: one 10,000-character name stopped a whole load) --------------------

_BY_NAME = (
    "MATCH (n:{label}) WHERE n.name_prefix = left($name, 256) AND n.name = $name "
    "RETURN n.name AS name"
)
_LABELS = {"artist": "Artist", "track": "Song", "genre": "Genre", "playlist": "Playlist"}


@pytest.mark.parametrize("source", sorted(_CLEAN))
def test_long_names_load_whole_on_both_paths_and_are_found_by_name(
    source: str, local: Settings, driver: neo4j.Driver, tmp_path: Path
) -> None:
    from ingest import ingest

    path = _dirty.write_long_names(source, tmp_path)
    folder = ingest(source, path, settings=local, out_dir=tmp_path / "tables", dry_run=True).folder
    db = local.neo4j_database
    wipe_graph(driver, db)
    bulk_import(folder, local, driver=driver, source=source)
    bulk_dump = dump(driver, db)
    wipe_graph(driver, db)
    apply_schema(driver, db)
    Loader(driver, db).load(folder, source=source)
    online_dump = dump(driver, db)
    assert bulk_dump["nodes"] == online_dump["nodes"], _differences(
        bulk_dump["nodes"], online_dump["nodes"]
    )
    stored = {
        r["name"]
        for r in _rows(driver, db, "MATCH (n) WHERE n.name IS NOT NULL RETURN n.name AS name")
    }
    checked = 0
    for key, name in _dirty.long_names().items():
        if name not in stored:  # the format has no such name (Last.fm: no genres, playlists)
            continue
        label = _LABELS[key.split("_")[0]]
        if label == "Playlist":  # playlists are found by id, their names are not indexed
            continue
        _, summary, _ = driver.execute_query(
            "EXPLAIN " + _BY_NAME.format(label=label), name=name, database_=db
        )
        assert "NodeIndexSeek" in str(summary.plan), summary.plan
        found = _rows_params(driver, db, _BY_NAME.format(label=label), name=name)
        assert [r["name"].encode() for r in found] == [name.encode()], key
        checked += 1
    assert checked >= 4


def _rows_params(driver: neo4j.Driver, db: str, text: str, **params: Any) -> list[dict]:
    records, _, _ = driver.execute_query(text, params, database_=db)
    return [r.data() for r in records]
