"""The ingest pipeline against a real Neo4j: counts, idempotence, increments, failures, names.

Every reader's small clean and dirty files (``tests/_dirty.py``) go through
:func:`ingest.ingest`; the graph must then hold exactly the rows that passed validation. The
graph is compared as a full dump (every node and relationship with its properties), so
"nothing changed" means nothing at all changed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import neo4j
import pandas as pd
import pyarrow.parquet as pq
import pytest

from graphdb import wipe_graph
from ingest import IngestOutcome, SyntheticConfig, ingest, validate_graph
from spotify_engine.errors import IngestError
from spotify_engine.settings import Settings

try:
    from tests import _dirty
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import _dirty  # type: ignore[no-redef]

pytestmark = pytest.mark.neo4j

SMALL = SyntheticConfig(users=25, songs=240, artists=24, days=7, mean_plays_per_user=24, seed=7)

Writer = Callable[[Path], dict[str, Any]]


def _case(source: str, write: Callable[[Path], Path], **extra: Callable[[Path], Path]) -> Writer:
    def make(tmp: Path) -> dict[str, Any]:
        opts = {k: w(tmp) for k, w in extra.items()}
        return {"source": source, "path": write(tmp), **opts}

    return make


CASES: dict[str, Writer] = {
    "sessions-clean": _case("sessions", lambda t: _dirty.write_sessions_clean(t / "sessions")),
    "sessions-dirty": _case("sessions", lambda t: _dirty.write_sessions_dirty(t / "sessions")),
    "lastfm-clean": _case("lastfm", lambda t: _dirty.write_lastfm_clean(t / "lastfm.tsv")),
    "lastfm-dirty": _case("lastfm", lambda t: _dirty.write_lastfm_dirty(t / "lastfm.tsv")),
    "kaggle-clean": _case(
        "kaggle",
        lambda t: _dirty.write_kaggle_clean(t / "spotify_dataset.csv"),
        features_path=lambda t: _dirty.write_features(t / "tracks_features.csv"),
    ),
    "kaggle-dirty": _case("kaggle", lambda t: _dirty.write_kaggle_dirty(t / "spotify_dataset.csv")),
    "mpd-clean": _case("mpd", lambda t: _dirty.write_mpd_clean(t / "mpd")),
    "mpd-dirty": _case("mpd", lambda t: _dirty.write_mpd_dirty(t / "mpd")),
}
# The source rows each format counts in ``report.read``, and the table they become.
PRIMARY = {"sessions": "plays", "lastfm": "plays", "kaggle": "playlist_tracks"}


# -- helpers --------------------------------------------------------------------------------------


def run(
    driver: neo4j.Driver | None,
    settings: Settings,
    out: Path,
    source: str,
    path: Path | None = None,
    **kwargs: Any,
) -> IngestOutcome:
    return ingest(source, path, driver=driver, settings=settings, out_dir=out, **kwargs)


def rows(driver: neo4j.Driver, settings: Settings, text: str, **params: Any) -> list[dict]:
    records, _, _ = driver.execute_query(text, params, database_=settings.neo4j_database)
    return [r.data() for r in records]


def value(driver: neo4j.Driver, settings: Settings, text: str, **params: Any) -> Any:
    found = rows(driver, settings, text, **params)
    return next(iter(found[0].values()))


def dump(driver: neo4j.Driver, settings: Settings) -> tuple[list[str], list[str]]:
    """Every node and relationship with all properties, as sorted JSON (IngestBatch aside)."""
    nodes = rows(
        driver,
        settings,
        "MATCH (n) WHERE NOT n:IngestBatch AND NOT n:IngestLock "
        "RETURN labels(n) AS labels, n.id AS id, properties(n) AS props",
    )
    rels = rows(
        driver,
        settings,
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, a.id AS a, b.id AS b, properties(r) AS props",
    )

    def key(x: dict) -> str:
        return json.dumps(x, sort_keys=True, ensure_ascii=False)

    return sorted(map(key, nodes)), sorted(map(key, rels))


def label_count(driver: neo4j.Driver, settings: Settings, label: str) -> int:
    counts = rows(driver, settings, "MATCH (n) UNWIND labels(n) AS l RETURN l, count(*) AS n")
    return next((int(c["n"]) for c in counts if c["l"] == label), 0)


def rel_count(driver: neo4j.Driver, settings: Settings, rel: str) -> int:
    counts = rows(driver, settings, "MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n")
    return next((int(c["n"]) for c in counts if c["t"] == rel), 0)


def tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pq.read_table(p).to_pandas() for p in folder.glob("*.parquet")}


def transitions(plays: pd.DataFrame) -> Counter[tuple[str, str]]:
    """Consecutive (song, next song) pairs within sessions, from the plays table."""
    out: Counter[tuple[str, str]] = Counter()
    for _, g in plays.sort_values(["session_id", "pos"]).groupby("session_id"):
        songs = g["song_id"].tolist()
        out.update(zip(songs, songs[1:], strict=False))
    return out


def write_sessions_csv(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header = "user_id,track_id,artist_id,timestamp,ms_played,track_duration_ms"
    (folder / "synthetic_sessions.csv").write_text("\n".join([header, *lines]) + "\n")
    return folder


def listened(driver: neo4j.Driver, settings: Settings) -> dict[tuple[str, str], int]:
    found = rows(
        driver,
        settings,
        "MATCH (u:User)-[l:LISTENED]->(s:Song) RETURN u.id AS u, s.id AS s, l.plays AS n",
    )
    return {(r["u"], r["s"]): r["n"] for r in found}


def followed(driver: neo4j.Driver, settings: Settings) -> dict[tuple[str, str], int]:
    found = rows(
        driver,
        settings,
        "MATCH (a:Song)-[f:FOLLOWED_BY]->(b:Song) RETURN a.id AS a, b.id AS b, f.count AS n",
    )
    return {(r["a"], r["b"]): r["n"] for r in found}


# -- every reader, clean and dirty ----------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_holds_exactly_the_valid_rows(
    case: str, graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    spec = CASES[case](tmp_path)
    outcome = run(graph, neo4j_settings, tmp_path / "work", **spec)
    assert outcome.load is not None and not outcome.load.skipped
    t = tables(outcome.folder)
    plays, tracks = t["plays"], t["playlist_tracks"]
    source = spec["source"]

    # Rows read minus rows rejected and duplicates is what reached the graph.
    if source in PRIMARY:
        kept = (
            outcome.report.read[source]
            - sum(n for (s, _), n in outcome.report.rejected.items() if s == source)
            - outcome.report.duplicates[source]
        )
        assert kept == len(t[PRIMARY[source]])
    records = outcome.quarantine.read_text(encoding="utf-8").splitlines()
    assert sum(outcome.report.rejected.values()) == sum(json.loads(r)["rows"] for r in records)

    def count(label: str) -> int:
        return label_count(graph, neo4j_settings, label)

    def rels(rel: str) -> int:
        return rel_count(graph, neo4j_settings, rel)

    assert rels("PLAYED") == len(plays)
    assert count("Session") == plays["session_id"].nunique()
    assert rels("HAD") == plays["session_id"].nunique()
    assert value(graph, neo4j_settings, "MATCH ()-[l:LISTENED]->() RETURN sum(l.plays)") == len(
        plays
    )
    assert rels("LISTENED") == len(plays[["user_id", "song_id"]].drop_duplicates())
    assert followed(graph, neo4j_settings) == dict(transitions(plays))
    songs = set(t["songs"]["song_id"]) | set(plays["song_id"]) | set(tracks["song_id"])
    assert count("Song") == len(songs)
    users = (
        set(t["users"]["user_id"]) | set(plays["user_id"]) | set(t["playlists"]["user_id"].dropna())
    )
    assert count("User") == len(users)
    assert count("Artist") == len(t["artists"])
    assert count("Album") == len(t["albums"])
    assert count("Genre") == len(t["genres"])
    assert count("Playlist") == len(set(t["playlists"]["playlist_id"]) | set(tracks["playlist_id"]))
    assert rels("CONTAINS") == len(tracks)
    assert rels("IN_GENRE") == len(t["song_genres"]) + len(t["artist_genres"])
    by = t["songs"]["artist_id"].notna().sum() + t["albums"]["artist_id"].notna().sum()
    assert rels("BY") == by
    assert count("IngestBatch") == 1


@pytest.mark.parametrize("case", ["sessions-dirty", "kaggle-dirty", "mpd-dirty", "lastfm-dirty"])
def test_rerun_and_forced_rerun_change_nothing(
    case: str, graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    spec = CASES[case](tmp_path)
    first = run(graph, neo4j_settings, tmp_path / "w1", **spec)
    before = dump(graph, neo4j_settings)
    again = run(graph, neo4j_settings, tmp_path / "w2", **spec)
    assert again.load is not None and again.load.skipped
    assert again.load.batch_id == first.load.batch_id  # type: ignore[union-attr]
    assert dump(graph, neo4j_settings) == before
    forced = run(graph, neo4j_settings, tmp_path / "w3", force=True, **spec)
    assert forced.load is not None and not forced.load.skipped
    assert forced.load.sessions_new == 0
    assert forced.load.sessions_existing == first.load.sessions_new  # type: ignore[union-attr]
    assert dump(graph, neo4j_settings) == before


def test_incremental_load_adds_new_sessions_once(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    day1 = [
        "U1,T1,A1,2024-01-01T00:00:00,200000,240000",
        "U1,T2,A1,2024-01-01T00:04:00,200000,240000",
        "U1,T1,A1,2024-01-01T00:08:00,200000,240000",
        "U2,T2,A1,2024-01-01T10:00:00,200000,240000",
        "U2,T1,A1,2024-01-01T10:04:00,10000,240000",
    ]
    day2 = [
        "U1,T1,A1,2024-01-02T00:00:00,200000,240000",
        "U1,T2,A1,2024-01-02T00:04:00,200000,240000",
        "U2,T2,A1,2024-01-02T10:00:00,200000,240000",
    ]
    a = write_sessions_csv(tmp_path / "a", day1)
    b = write_sessions_csv(tmp_path / "b", day2)
    run(graph, neo4j_settings, tmp_path / "wa", "sessions", a)
    assert listened(graph, neo4j_settings) == {
        ("U1", "T1"): 2,
        ("U1", "T2"): 1,
        ("U2", "T2"): 1,
        ("U2", "T1"): 1,
    }
    second = run(graph, neo4j_settings, tmp_path / "wb", "sessions", b)
    assert second.load is not None and second.load.sessions_new == 2
    expected_listened = {("U1", "T1"): 3, ("U1", "T2"): 2, ("U2", "T2"): 2, ("U2", "T1"): 1}
    expected_followed = {("T1", "T2"): 2, ("T2", "T1"): 2}
    assert listened(graph, neo4j_settings) == expected_listened
    assert followed(graph, neo4j_settings) == expected_followed
    skips = value(
        graph,
        neo4j_settings,
        "MATCH (:User {id: 'U2'})-[l:LISTENED]->(:Song {id: 'T1'}) RETURN l.skips",
    )
    assert skips == 1
    state = dump(graph, neo4j_settings)

    # The same second file again, plain or forced: nothing changes.
    assert run(graph, neo4j_settings, tmp_path / "wb2", "sessions", b).load.skipped  # type: ignore[union-attr]
    run(graph, neo4j_settings, tmp_path / "wb3", "sessions", b, force=True)
    assert dump(graph, neo4j_settings) == state

    # The whole log at once, after its parts: every session is already there.
    whole = write_sessions_csv(tmp_path / "whole", day1 + day2)
    third = run(graph, neo4j_settings, tmp_path / "wc", "sessions", whole)
    assert third.load is not None and third.load.sessions_new == 0
    assert third.load.sessions_existing == 4
    assert dump(graph, neo4j_settings) == state
    assert all(c.status == "PASS" for c in validate_graph(graph, neo4j_settings.neo4j_database)[3:])


def test_a_plays_only_file_keeps_the_names_an_earlier_load_gave(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """A sessions CSV names no songs or artists: loading one after a catalogue must not turn
    the songs' and artists' real names into their ids; a song first met there has no name."""
    first = tmp_path / "catalogue"
    write_sessions_csv(first, ["U1,T1,A1,2024-01-01T00:00:00,200000,240000"])
    (first / "synthetic_artists.csv").write_text(
        "artist_id,artist_name,popularity\nA1,The Real Artist,0.5\n"
    )
    (first / "synthetic_songs.csv").write_text(
        "track_id,track_name,artist_id,artist_name,duration_ms,popularity\n"
        "T1,Real Song Name,A1,The Real Artist,240000,0.5\n"
    )
    run(graph, neo4j_settings, tmp_path / "w1", "sessions", first)
    plays = write_sessions_csv(
        tmp_path / "plays",
        [
            "U2,T1,A1,2024-01-02T00:00:00,200000,240000",
            "U2,T9,A1,2024-01-02T00:04:00,200000,240000",
        ],
    )
    run(graph, neo4j_settings, tmp_path / "w2", "sessions", plays)
    got = rows(
        graph,
        neo4j_settings,
        "MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS id, s.name AS song, "
        "s.name_prefix AS prefix, a.name AS artist ORDER BY id",
    )
    assert got == [
        {
            "id": "T1",
            "song": "Real Song Name",
            "prefix": "Real Song Name",
            "artist": "The Real Artist",
        },
        {"id": "T9", "song": None, "prefix": None, "artist": "The Real Artist"},
    ]
    assert listened(graph, neo4j_settings) == {("U1", "T1"): 1, ("U2", "T1"): 1, ("U2", "T9"): 1}


class Interrupt(RuntimeError):
    pass


@pytest.mark.parametrize("stage", ["load:songs", "load:plays", "load:playlists"])
def test_a_failed_run_can_be_run_again(
    stage: str, graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    opts: dict[str, Any] = {"synthetic": SMALL, "batch_size": 40}
    run(graph, neo4j_settings, tmp_path / "clean", "synthetic", **opts)
    clean = dump(graph, neo4j_settings)
    db = neo4j_settings.neo4j_database
    wipe_graph(graph, db)

    def stop_after_first_chunk(name: str, done: int, total: int) -> None:
        if name == stage and 0 < done < total:
            raise Interrupt(f"stopped {name} at {done}/{total}")

    with pytest.raises(Interrupt):
        run(
            graph,
            neo4j_settings,
            tmp_path / "broken",
            "synthetic",
            progress=stop_after_first_chunk,
            **opts,
        )
    partial = dump(graph, neo4j_settings)
    assert partial != clean and partial[0]  # something, but not everything, was written
    assert label_count(graph, neo4j_settings, "IngestBatch") == 0

    again = run(graph, neo4j_settings, tmp_path / "again", "synthetic", **opts)
    assert again.load is not None and not again.load.skipped
    assert dump(graph, neo4j_settings) == clean
    assert label_count(graph, neo4j_settings, "IngestBatch") == 1


# -- names that look like code --------------------------------------------------------------------

INJECTION_IDS = ("'}) MATCH (n) DETACH DELETE n //", "$x", "`tick`{brace}", "🎧 ‏עברית‏")


def test_odd_names_and_ids_round_trip(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    for name in ("lastfm-dirty", "kaggle-dirty", "mpd-dirty", "sessions-dirty"):
        (tmp_path / name).mkdir()
        spec = CASES[name](tmp_path / name)
        run(graph, neo4j_settings, tmp_path / f"w-{name}", **spec)
    lines = [
        ",".join(
            [
                '"' + uid.replace('"', '""') + '"',
                '"' + uid.replace('"', '""') + '-song"',
                "A1",
                f"2024-02-0{i + 1}T00:00:00",
                "200000",
                "240000",
            ]
        )
        for i, uid in enumerate(INJECTION_IDS)
    ]
    run(
        graph,
        neo4j_settings,
        tmp_path / "w-ids",
        "sessions",
        write_sessions_csv(tmp_path / "ids", lines),
    )

    songs = set(value(graph, neo4j_settings, "MATCH (s:Song) RETURN collect(s.name)"))
    artists = set(value(graph, neo4j_settings, "MATCH (a:Artist) RETURN collect(a.name)"))
    playlists = set(value(graph, neo4j_settings, "MATCH (p:Playlist) RETURN collect(p.name)"))
    users = set(value(graph, neo4j_settings, "MATCH (u:User) RETURN collect(u.id)"))
    for odd in _dirty.ODD_NAMES:
        assert odd in songs, odd
        assert odd in artists, odd
    assert {_dirty.NEWLINE_NAME, "a\nb\nc"} <= songs
    assert {"Odd 🎶", _dirty.ODD_NAMES[0]} <= playlists
    assert set(INJECTION_IDS) <= users
    assert {f"{u}-song" for u in INJECTION_IDS} <= {
        s["id"] for s in rows(graph, neo4j_settings, "MATCH (s:Song) RETURN s.id AS id")
    }
    # Nothing was deleted by any of it: every check that can run still passes.
    checks = {c.name: c for c in validate_graph(graph, neo4j_settings.neo4j_database)}
    for name in ("LISTENED.plays = PLAYED count", "FOLLOWED_BY.count = consecutive plays"):
        assert checks[name].status == "PASS", checks[name]


# -- audit trail ----------------------------------------------------------------------------------


def test_quarantine_and_report_in_the_default_work_folder(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    settings = neo4j_settings.model_copy(update={"home": tmp_path / "home"})
    path = _dirty.write_lastfm_dirty(tmp_path / "lastfm.tsv")
    outcome = ingest("lastfm", path, driver=graph, settings=settings)
    assert outcome.folder.parent == tmp_path / "home" / "ingest"
    assert outcome.folder.name.startswith("lastfm-")
    records = [json.loads(x) for x in outcome.quarantine.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 9
    assert Counter((r["source"], r["reason"]) for r in records) == outcome.report.rejected
    assert {r["reason"] for r in records} == {
        "bad_id",
        "bad_timestamp",
        "column_count",
        "empty_name",
        "encoding",
        "missing_field",
        "truncated",
    }
    truncated = next(r for r in records if r["reason"] == "truncated")
    assert truncated["raw"] == "user_000003\t2009-05-0"
    report = json.loads((outcome.folder / "report.json").read_text(encoding="utf-8"))
    assert report["source"] == "lastfm" and report["dry_run"] is False
    assert report["read"] == {"lastfm": 23} and report["rows"]["plays"] == 14
    assert report["load"]["batch_id"] == outcome.load.batch_id  # type: ignore[union-attr]
    assert report["load"]["rows"]["plays"] == 14
    assert sum(r["count"] for r in report["rejected"]) == 9
    # A second run gets its own folder: the first audit trail stays.
    second = ingest("lastfm", path, driver=graph, settings=settings)
    assert second.folder != outcome.folder and outcome.quarantine.exists()


def test_nothing_to_load_is_an_ingest_error(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"garbage without tabs\nmore garbage\n")
    with pytest.raises(IngestError, match="nothing to load.*2 rows rejected"):
        run(graph, neo4j_settings, tmp_path / "w", "lastfm", path)
    assert dump(graph, neo4j_settings) == ([], [])


# -- data validate --------------------------------------------------------------------------------


def test_validate_passes_on_synthetic_and_fails_on_corruption(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    db = neo4j_settings.neo4j_database
    run(graph, neo4j_settings, tmp_path / "w", "synthetic", synthetic=SMALL)
    checks = validate_graph(graph, db)
    assert [c.status for c in checks] == ["PASS"] * 8, checks
    assert checks[2].value >= 3.0  # top genre over median genre

    def failing() -> dict[str, float]:
        return {c.name: c.value for c in validate_graph(graph, db) if c.failed}

    graph.execute_query(
        "MATCH (:User)-[l:LISTENED]->(:Song) WITH l ORDER BY l.plays DESC LIMIT 1 "
        "SET l.plays = l.plays + 1",
        database_=db,
    )
    assert failing() == {"LISTENED.plays = PLAYED count": 1.0}
    bad = next(c for c in validate_graph(graph, db) if c.failed)
    assert "1 of" in bad.detail and "'played'" in bad.detail  # names the pair and both counts
    graph.execute_query(
        "MATCH (:User)-[l:LISTENED]->(:Song) WITH l ORDER BY l.plays DESC LIMIT 1 "
        "SET l.plays = l.plays - 1",
        database_=db,
    )
    assert failing() == {}
    graph.execute_query(
        "MATCH (a:Song)-[f:FOLLOWED_BY]->() WITH a, f ORDER BY a.id LIMIT 1 "
        "SET f.count = f.count + 1",
        database_=db,
    )
    assert failing() == {"FOLLOWED_BY.count = consecutive plays": 1.0}
    graph.execute_query("MATCH (:User)-[h:HAD]->(:Session) WITH h LIMIT 1 DELETE h", database_=db)
    assert set(failing()) == {
        "FOLLOWED_BY.count = consecutive plays",
        "LISTENED.plays = PLAYED count",
        "no orphan sessions",
    }
    graph.execute_query(
        "MATCH (:Session)-[p:PLAYED]->() WITH p ORDER BY p.pos DESC LIMIT 1 SET p.pos = p.pos + 5",
        database_=db,
    )
    assert "session positions are 0..n-1" in failing()


# -- regressions ------------------------------------------------------------------------


def test_unknown_ms_played_stays_unknown(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    run(
        graph,
        neo4j_settings,
        tmp_path / "w",
        "lastfm",
        _dirty.write_lastfm_clean(tmp_path / "l.tsv"),
    )
    played = rows(graph, neo4j_settings, "MATCH ()-[p:PLAYED]->() RETURN p.ms_played AS ms")
    assert {p["ms"] for p in played} == {None}
    sessions = rows(graph, neo4j_settings, "MATCH (s:Session) RETURN s.start AS a, s.end AS b")
    assert all(s["b"] >= s["a"] for s in sessions)
    listened = rows(graph, neo4j_settings, "MATCH ()-[l:LISTENED]->() RETURN l.ms_played AS ms")
    assert {x["ms"] for x in listened} == {None}
