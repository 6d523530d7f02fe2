"""The four source readers on small clean and dirty files: exact counts, reasons, round trips.

Pure: no Neo4j. The dirty files (``tests/_dirty.py``) hold every defect the readers must
survive; each assertion names an exact number, so a reader that drops, duplicates or
misclassifies a row fails here.
"""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ingest._readers as readers
from ingest._gaps import assign_sessions, is_skipped
from ingest._ids import name_key
from ingest._readers import (
    READERS,
    read_kaggle,
    read_lastfm,
    read_mpd,
    read_sessions_folder,
)
from ingest._sink import IngestReport, TableSink
from ingest._tables import SCHEMAS, TABLES

try:
    from tests import _dirty
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import _dirty  # type: ignore[no-redef]

REFERENCE = Path("/work/shared/data/reference-synthetic")
QUARANTINE_KEYS = {"source", "location", "field", "reason", "raw", "rows"}


@dataclass
class Run:
    out: Path
    report: IngestReport

    def table(self, name: str) -> pa.Table:
        return pq.read_table(self.out / f"{name}.parquet")

    def rows(self, name: str) -> list[dict[str, Any]]:
        return self.table(name).to_pylist()

    def by(self, name: str, key: str) -> dict[str, dict[str, Any]]:
        return {r[key]: r for r in self.rows(name)}

    @property
    def quarantine(self) -> list[dict[str, Any]]:
        lines = (self.out / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(x) for x in lines]

    def rejected(self, source: str) -> dict[str, int]:
        return {r: c for (s, r), c in self.report.rejected.items() if s == source}

    def record(self, reason: str, location: Any) -> dict[str, Any]:
        found = [q for q in self.quarantine if q["reason"] == reason and q["location"] == location]
        assert len(found) == 1, (reason, location, self.quarantine)
        return found[0]


def run(reader: Any, path: Path, out: Path, **kwargs: Any) -> Run:
    with TableSink(out) as sink:
        reader(path, sink, **kwargs)
    result = Run(out, sink.report)
    for record in result.quarantine:
        assert set(record) == QUARANTINE_KEYS
        assert isinstance(record["reason"], str) and record["raw"] is not None
    for table in TABLES:
        assert result.table(table).schema == SCHEMAS[table]
    return result


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# -- module surface, ids ----------------------------------------------------------------------


def test_exported_names() -> None:
    assert set(READERS) == {"sessions", "lastfm", "kaggle", "mpd"}
    assert READERS["mpd"] is read_mpd
    assert sorted(readers.__all__) == sorted(
        [
            "DEFAULT_GAP_MINUTES",
            "READERS",
            "BadField",
            "assign_sessions",
            "derive_sessions",
            "is_skipped",
            "name_key",
            "normalise_name",
            "read_features",
            "read_kaggle",
            "read_lastfm",
            "read_mpd",
            "read_sessions_folder",
            "slice_files",
        ]
    )


def test_name_key_normalises_case_space_and_composition() -> None:
    key = name_key("Beyoncé", "Halo")
    assert len(key) == 16 and set(key) <= set("0123456789abcdef")
    assert name_key("  BEYONCE\u0301 ", "halo\t") == key
    assert name_key("Beyonce", "Halo") != key
    assert name_key("a b", "c") != name_key("a", "b c")
    assert name_key("Straße") == name_key("STRASSE")


def test_skip_rule() -> None:
    assert is_skipped(10_000, 240_000)
    assert not is_skipped(30_000, 240_000)
    assert is_skipped(15_000, 40_000)  # short track: half of it is the bar
    assert not is_skipped(25_000, 40_000)
    assert not is_skipped(1, None) and not is_skipped(None, 1000) and not is_skipped(1, 0)


# -- sessions folder --------------------------------------------------------------------------


def test_sessions_clean(tmp_path: Path) -> None:
    folder = _dirty.write_sessions_clean(tmp_path / "src")
    calls: list[int] = []
    r = run(read_sessions_folder, folder, tmp_path / "out", progress=calls.append)
    assert dict(r.report.rows) == {"users": 3, "artists": 2, "songs": 4, "plays": 6}
    assert r.report.read == {"sessions": 6} and r.quarantine == []
    # plays name no songs: the songs have no name (not their ids), see _read_sessions._play
    assert {s["song_id"]: s["name"] for s in r.rows("songs")} == dict.fromkeys(
        (f"T{i}" for i in (1, 2, 3, 4)), None
    )
    plays = r.rows("plays")
    assert all(p["session_id"] and p["pos"] is not None for p in plays)
    skipped = {(p["user_id"], p["song_id"]): p["skipped"] for p in plays}
    assert skipped[("U1", "T2")] and not skipped[("U1", "T1")]
    assert ms("2024-01-03T12:00:00.123") in {p["ts"] for p in plays}
    assert (
        calls == sorted(calls) and calls[-1] == (folder / "synthetic_sessions.csv").stat().st_size
    )
    assert not (r.out / "truth.json").exists()


def test_sessions_dirty(tmp_path: Path) -> None:
    folder = _dirty.write_sessions_dirty(tmp_path / "src")
    r = run(read_sessions_folder, folder, tmp_path / "out")
    assert r.rejected("sessions") == {
        "column_count": 2,
        "bad_timestamp": 2,
        "bad_number": 2,
        "missing_field": 1,
        "encoding": 1,
        "truncated": 1,
    }
    assert r.rejected("sessions:synthetic_songs.csv") == {
        "empty_name": 2,
        "bad_number": 2,
        "encoding": 1,
        "column_count": 1,
    }
    assert r.rejected("sessions:synthetic_artists.csv") == {"empty_name": 1}
    assert r.rejected("sessions:synthetic_genres.csv") == {"empty_name": 1}
    assert r.rejected("sessions:synthetic_song_genres.csv") == {"missing_field": 1}
    assert r.rejected("sessions:synthetic_artist_genres.csv") == {}
    assert r.rejected("sessions:synthetic_users.csv") == {"bad_number": 1}
    assert r.rejected("sessions:synthetic_user_genre_preferences.csv") == {"bad_number": 1}
    assert r.report.total_rejected == 9 + 6 + 1 + 1 + 1 + 1 + 1
    assert r.report.read["sessions"] == 14
    assert dict(r.report.rows) == {
        "plays": 5,
        "songs": 13,
        "artists": 3,
        "genres": 3,
        "song_genres": 2,
        "artist_genres": 1,
        "users": 2,
    }

    songs = r.by("songs", "song_id")
    assert [songs[f"T{i}"]["name"] for i in range(1, 13)] == list(_dirty.ODD_NAMES)
    for i, name in enumerate(_dirty.ODD_NAMES, start=1):
        assert songs[f"T{i}"]["name"].encode() == name.encode()
    assert songs["T99"] == {**songs["T99"], "name": None, "artist_id": None}
    artists = {a["artist_id"]: a["name"] for a in r.rows("artists")}
    assert artists == {
        "A1": "مشروع ليلى",
        "A2": "'}) MATCH (n) DETACH DELETE n //",
        "A5": "Artist from songs.csv",
    }
    genres = {g["genre_id"]: g["name"] for g in r.rows("genres")}
    assert genres == {"G1": "Pop", "G2": "Rock, Roll", "G4": "Jazz"}
    users = r.by("users", "user_id")
    assert users["U1"]["user_type"] == "regular" and users["U2"]["user_type"] is None

    plays = {(p["user_id"], p["ts"]): p for p in r.rows("plays")}
    assert set(plays) == {
        ("U1", ms("2024-01-01T00:00:00")),
        ("U1", ms("2024-01-01T00:05:00.250")),
        ("U1", ms("2024-01-01T00:10:00")),
        ("U2", ms("2024-01-01T10:00:00")),
        ("U2", ms("2024-01-01T08:10:00")),
    }
    assert plays[("U1", ms("2024-01-01T00:05:00.250"))]["skipped"] is True
    assert plays[("U2", ms("2024-01-01T08:10:00"))]["skipped"] is False

    truth = json.loads((r.out / "truth.json").read_text(encoding="utf-8"))
    assert truth == {
        "users": {"U1": {"genre_prefs": {"G1": 0.9, "G2": 0.2}, "favourite_artists": []}}
    }
    assert {(x["song_id"], x["genre_id"]) for x in r.rows("song_genres")} == {
        ("T1", "G1"),
        ("T2", "G4"),
    }

    bad = r.record("encoding", 14)
    assert (
        bad["source"] == "sessions" and bad["raw"] == "U1,T\\xff1,A1,2024-01-01T00:00:00,1000,2000"
    )
    assert r.record("bad_timestamp", 10) == {
        "source": "sessions",
        "location": 10,
        "field": "timestamp",
        "reason": "bad_timestamp",
        "raw": "U1,T1,A1,yesterday,1000,2000",
        "rows": 1,
    }
    assert r.record("truncated", 16)["raw"] == "U3,T1,A1,2024-01-0"
    assert r.record("bad_number", 12)["field"] == "ms_played"


def test_sessions_needs_the_sessions_file(tmp_path: Path) -> None:
    with TableSink(tmp_path / "out") as sink, pytest.raises(FileNotFoundError):
        read_sessions_folder(tmp_path, sink)
    (tmp_path / "synthetic_sessions.csv").write_text("user_id,track_id\nU1,T1\n")
    with TableSink(tmp_path / "out") as sink, pytest.raises(ValueError, match="timestamp"):
        read_sessions_folder(tmp_path, sink)


# -- Last.fm ----------------------------------------------------------------------------------


def test_lastfm_clean(tmp_path: Path) -> None:
    path = _dirty.write_lastfm_clean(tmp_path / "lastfm.tsv")
    calls: list[int] = []
    r = run(read_lastfm, path, tmp_path / "out", progress=calls.append)
    assert dict(r.report.rows) == {"users": 2, "artists": 3, "songs": 4, "plays": 6}
    assert r.quarantine == [] and calls[-1] == path.stat().st_size
    artists = {a["artist_id"]: a["name"] for a in r.rows("artists")}
    assert artists == {
        f"mbid:{_dirty.MBID_ARTIST}": "Deep Dish",
        name_key("Air"): "Air",
        name_key("Björk"): "Björk",
    }
    songs = r.by("songs", "song_id")
    assert songs[f"mbid:{_dirty.MBID_TRACK}"]["name"] == "La femme"
    assert songs[name_key("Deep Dish", "Famous")]["artist_id"] == f"mbid:{_dirty.MBID_ARTIST}"
    plays = r.rows("plays")
    assert all(p["ms_played"] is None and p["skipped"] is False for p in plays)
    sessions = Counter(p["session_id"] for p in plays)
    assert sessions == {
        f"user_000001@{ms('2009-05-04T22:58:00')}": 3,
        f"user_000002@{ms('2009-05-02T09:55:00')}": 1,
        f"user_000002@{ms('2009-05-03T09:55:00')}": 2,
    }
    order = [p["song_id"] for p in sorted(plays, key=lambda p: (p["session_id"], p["pos"]))]
    assert order[:3] == [
        f"mbid:{_dirty.MBID_TRACK}",
        name_key("Deep Dish", "Other"),
        name_key("Deep Dish", "Famous"),
    ]


def test_lastfm_dirty(tmp_path: Path) -> None:
    path = _dirty.write_lastfm_dirty(tmp_path / "lastfm.tsv")
    r = run(read_lastfm, path, tmp_path / "out")
    assert r.rejected("lastfm") == {
        "column_count": 2,
        "bad_timestamp": 1,
        "empty_name": 2,
        "missing_field": 1,
        "bad_id": 1,
        "encoding": 1,
        "truncated": 1,
    }
    assert r.report.read == {"lastfm": 23}
    assert dict(r.report.rows) == {"users": 2, "artists": 14, "songs": 14, "plays": 14}
    assert {u["user_id"] for u in r.rows("users")} == {"user_000001", "user_000002"}

    songs = r.by("songs", "song_id")
    artists = r.by("artists", "artist_id")
    guns = name_key('Guns "N" Roses')
    assert artists[guns]["name"] == 'Guns "N" Roses'
    assert songs[name_key('Guns "N" Roses', '"Sweet" Child o\' Mine')]["artist_id"] == guns
    assert songs[f"mbid:{_dirty.MBID_TRACK}"]["name"] == "Famous"
    for name in _dirty.ODD_NAMES:
        assert songs[name_key(name, name)]["name"].encode() == name.encode()
        assert artists[name_key(name)]["name"].encode() == name.encode()

    assert (
        r.record("encoding", 22)["raw"]
        == "user_000003\t2009-05-04T23:08:57Z\t\tBad \\xff\\xfe\t\tX"
    )
    assert r.record("empty_name", 18)["field"] == "artname"
    assert r.record("empty_name", 19)["field"] == "traname"
    assert r.record("bad_id", 21)["field"] == "artid"
    assert r.record("missing_field", 20)["field"] == "userid"
    assert r.record("truncated", 24)["raw"] == "user_000003\t2009-05-0"
    assert r.record("column_count", 15)["source"] == "lastfm"


# -- sessions by gap --------------------------------------------------------------------------


def _plays(rows: list[tuple[str, int, int | None]]) -> pa.Table:
    return pa.table(
        {
            "user_id": [u for u, _, _ in rows],
            "song_id": [f"s{i}" for i in range(len(rows))],
            "session_id": [None] * len(rows),
            "pos": [None] * len(rows),
            "ts": [t for _, t, _ in rows],
            "ms_played": [m for _, _, m in rows],
            "skipped": [False] * len(rows),
        },
        schema=SCHEMAS["plays"],
    )


def test_gap_of_31_minutes_splits_29_does_not() -> None:
    minute = 60_000
    t0 = 1_700_000_000_000
    rows = [
        ("u", t0 + 60 * minute, None),  # 31 min after the play before: new session
        ("u", t0, None),
        ("u", t0 + 29 * minute, None),
        ("v", t0 + 29 * minute, None),  # another user: own session
    ]
    out = assign_sessions(_plays(rows), session_gap_minutes=30).to_pylist()
    got = [(p["user_id"], p["ts"] - t0, p["session_id"], p["pos"]) for p in out]
    assert got == [
        ("u", 0, f"u@{t0}", 0),
        ("u", 29 * minute, f"u@{t0}", 1),
        ("u", 60 * minute, f"u@{t0 + 60 * minute}", 0),
        ("v", 29 * minute, f"v@{t0 + 29 * minute}", 0),
    ]
    assert {
        p["session_id"] for p in assign_sessions(_plays(rows), session_gap_minutes=45).to_pylist()
    } == {
        f"u@{t0}",
        f"v@{t0 + 29 * minute}",
    }


def test_gap_counts_from_the_end_of_the_previous_play() -> None:
    minute = 60_000
    rows = [("u", 0, minute), ("u", 30 * minute, minute), ("u", 62 * minute, minute)]
    out = assign_sessions(_plays(rows), session_gap_minutes=30).to_pylist()
    assert [p["session_id"] for p in out] == ["u@0", "u@0", f"u@{62 * minute}"]
    with pytest.raises(ValueError, match="got 0"):
        assign_sessions(_plays(rows), session_gap_minutes=0)


def test_lastfm_session_gap_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "gap.tsv"
    rows = [
        _dirty.lastfm_line("u1", "2009-01-01T01:00:00Z", "A", "c"),
        _dirty.lastfm_line("u1", "2009-01-01T00:29:00Z", "A", "b"),
        _dirty.lastfm_line("u1", "2009-01-01T00:00:00Z", "A", "a"),
    ]
    path.write_bytes(b"\n".join(rows) + b"\n")
    default = run(read_lastfm, path, tmp_path / "a")
    assert Counter(p["session_id"] for p in default.rows("plays")) == {
        f"u1@{ms('2009-01-01T00:00:00')}": 2,
        f"u1@{ms('2009-01-01T01:00:00')}": 1,
    }
    wide = run(read_lastfm, path, tmp_path / "b", session_gap_minutes=45)
    assert {p["session_id"] for p in wide.rows("plays")} == {f"u1@{ms('2009-01-01T00:00:00')}"}


# -- Kaggle -----------------------------------------------------------------------------------


def test_kaggle_clean_with_features(tmp_path: Path) -> None:
    path = _dirty.write_kaggle_clean(tmp_path / "spotify_dataset.csv")
    features = _dirty.write_features(tmp_path / "tracks_features.csv")
    calls: list[int] = []
    r = run(read_kaggle, path, tmp_path / "out", features_path=features, progress=calls.append)
    assert dict(r.report.rows) == {
        "users": 2,
        "artists": 2,
        "songs": 3,
        "playlists": 2,
        "playlist_tracks": 4,
    }
    assert r.report.read == {"kaggle": 4, "kaggle:tracks_features.csv": 7}
    assert r.rejected("kaggle") == {}
    assert r.rejected("kaggle:tracks_features.csv") == {"bad_number": 1, "bad_list": 1}
    assert calls[-1] == path.stat().st_size + features.stat().st_size

    mix = name_key("u1", "Mix")
    assert r.by("playlists", "playlist_id")[mix] == {
        "playlist_id": mix,
        "name": "Mix",
        "user_id": "u1",
        "modified_at": None,
        "num_followers": None,
    }
    tracks = [
        (t["song_id"], t["pos"]) for t in r.rows("playlist_tracks") if t["playlist_id"] == mix
    ]
    quoted = name_key("Artist, With Comma", 'Track "Quoted"')
    assert tracks == [(name_key("Band", "Song A"), 0), (name_key("Band", "Song B"), 1), (quoted, 2)]

    songs = r.by("songs", "song_id")
    song_a = songs[name_key("Band", "Song A")]
    assert (song_a["danceability"], song_a["duration_ms"], song_a["tempo"]) == (0.5, 200000, 120.0)
    assert (songs[quoted]["danceability"], songs[quoted]["duration_ms"]) == (0.25, 123000)
    assert songs[quoted]["name"] == 'Track "Quoted"'
    song_b = songs[name_key("Band", "Song B")]
    assert song_b["danceability"] is None and song_b["duration_ms"] is None


def test_kaggle_dirty(tmp_path: Path) -> None:
    path = _dirty.write_kaggle_dirty(tmp_path / "spotify_dataset.csv")
    r = run(read_kaggle, path, tmp_path / "out")
    assert r.rejected("kaggle") == {
        "unbalanced_quote": 1,
        "column_count": 2,
        "empty_name": 3,
        "missing_field": 1,
        "encoding": 1,
        "truncated": 1,
    }
    assert r.report.read == {"kaggle": 27}
    assert dict(r.report.rows) == {
        "users": 2,
        "artists": 14,
        "songs": 17,
        "playlists": 3,
        "playlist_tracks": 18,
    }
    songs = r.by("songs", "song_id")
    artists = r.by("artists", "artist_id")
    for name in (*_dirty.ODD_NAMES, _dirty.NEWLINE_NAME, "a\nb\nc"):
        artist = name if name in _dirty.ODD_NAMES else "Band"
        assert songs[name_key(artist, name)]["name"].encode() == name.encode()
    for name in _dirty.ODD_NAMES:
        assert artists[name_key(name)]["name"].encode() == name.encode()
    assert songs[name_key("Band", "Song A")]["name"] == "Song A"

    def order(user: str, playlist: str) -> list[str]:
        pid = name_key(user, playlist)
        rows = [t for t in r.rows("playlist_tracks") if t["playlist_id"] == pid]
        return [t["song_id"] for t in sorted(rows, key=lambda t: t["pos"])]

    assert order("u1", "Odd 🎶") == [name_key(n, n) for n in _dirty.ODD_NAMES]
    song_a, song_b = name_key("Band", "Song A"), name_key("Band", "Song B")
    assert order("u2", "Mix") == [song_a, song_b, song_a]
    assert order("u2", "Road Trip")[1:] == [
        name_key("Band", _dirty.NEWLINE_NAME),
        name_key("Band", "a\nb\nc"),
    ]
    assert r.by("playlists", "playlist_id")[name_key("u1", "Odd 🎶")]["name"] == "Odd 🎶"

    assert r.record("unbalanced_quote", 2)["raw"] == '"u1", "Art"ist", "T", "P"'
    assert r.record("encoding", 30)["raw"] == '"u3", "A\\xff", "T", "P"'
    assert r.record("truncated", 32)["raw"] == '"u9", "A", "unterminated'
    assert r.record("missing_field", 29)["field"] == "user_id"
    assert r.record("empty_name", 28)["field"] == "playlistname"


# -- MPD --------------------------------------------------------------------------------------


def test_mpd_clean(tmp_path: Path) -> None:
    folder = _dirty.write_mpd_clean(tmp_path / "mpd")
    calls: list[int] = []
    r = run(read_mpd, folder, tmp_path / "out", progress=calls.append)
    assert dict(r.report.rows) == {
        "artists": 3,
        "albums": 2,
        "songs": 6,
        "playlists": 4,
        "playlist_tracks": 10,
    }
    assert r.report.read == {"mpd": 4} and r.quarantine == []
    assert calls[-1] == sum(p.stat().st_size for p in folder.iterdir())
    assert r.by("playlists", "playlist_id")["mpd:2"] == {
        "playlist_id": "mpd:2",
        "name": "Playlist 2",
        "user_id": None,
        "modified_at": 1493424000 * 1000,
        "num_followers": 1,
    }
    song = r.by("songs", "song_id")[_dirty.uri("track", 4)]
    assert (song["artist_id"], song["album_id"], song["duration_ms"]) == (
        _dirty.uri("artist", 1),
        _dirty.uri("album", 0),
        200004,
    )
    one = run(read_mpd, folder / "mpd.slice.2-3.json", tmp_path / "one")
    assert one.report.rows["playlists"] == 2 and one.report.rows["playlist_tracks"] == 5


def test_mpd_dirty(tmp_path: Path) -> None:
    folder = _dirty.write_mpd_dirty(tmp_path / "mpd")
    r = run(read_mpd, folder, tmp_path / "out")
    assert r.rejected("mpd") == {
        "missing_field": 2,
        "empty_name": 2,
        "duplicate_id": 1,
        "bad_timestamp": 1,
        "bad_number": 1,
        "bad_type": 1,
        "encoding": 2,
        "bad_id": 2,
        "count_mismatch": 1,
        "invalid_json": 3,  # the slice with a damaged playlist: its 3 playlists, whole
        "truncated": 2,  # the slice cut short: its 2 playlists, whole
    }
    assert r.report.read == {"mpd": 12}
    assert r.report.rows["playlists"] == 2
    assert r.report.rows["playlist_tracks"] == 14
    assert r.report.rows["songs"] == 14
    assert sorted(r.by("playlists", "playlist_id")) == ["mpd:0", "mpd:3"]
    assert r.report.files == {
        "mpd.slice.0-999.json": "accepted",
        "mpd.slice.1000-1999.json": "rejected: invalid_json at character 971, "
        "3 playlists not loaded",
        "mpd.slice.2000-2999.json": "rejected: truncated at character 1,095, "
        "2 playlists not loaded",
    }

    songs = r.by("songs", "song_id")
    artists = r.by("artists", "artist_id")
    for i, name in enumerate((*_dirty.ODD_NAMES, _dirty.NEWLINE_NAME)):
        assert songs[_dirty.uri("track", 100 + i)]["name"].encode() == name.encode()
        assert artists[_dirty.uri("artist", f"odd{100 + i}")]["name"].encode() == name.encode()
    assert r.by("playlists", "playlist_id")["mpd:0"]["name"] == _dirty.ODD_NAMES[0]

    first = "mpd.slice.0-999.json"
    damaged = r.record("invalid_json", "mpd.slice.1000-1999.json@971")
    assert '"name" "Playlist 1001"' in damaged["raw"] and damaged["rows"] == 3
    assert '"pid": 2001' in r.record("truncated", "mpd.slice.2000-2999.json@1095")["raw"]
    assert r.record("bad_id", f"{first}#3/7")["raw"].count("spotify:track:123") == 1
    assert r.record("bad_id", f"{first}#3/8")["field"] == "album_uri"
    assert r.record("count_mismatch", f"{first}#5")["field"] == "num_tracks"
    assert r.record("missing_field", f"{first}#1")["field"] == "name"
    assert r.record("missing_field", f"{first}#3/1")["field"] == "track_uri"
    assert r.record("empty_name", f"{first}#2")["field"] == "name"
    assert r.record("empty_name", f"{first}#3/2")["field"] == "track_name"
    assert r.record("bad_type", f"{first}#3/4")["raw"] == '"not a track"'
    assert "\\xff\\xfe" in r.record("encoding", f"{first}#3/5")["raw"]
    assert "\\ud800" in r.record("encoding", f"{first}#3/6")["raw"]
    assert r.record("duplicate_id", f"{first}#0")["field"] == "pid"
    assert r.record("bad_timestamp", f"{first}#4")["field"] == "modified_at"


# -- determinism, streaming, reference data ---------------------------------------------------


@pytest.mark.parametrize(
    ("reader", "write"),
    [
        (read_sessions_folder, lambda p: _dirty.write_sessions_dirty(p / "src")),
        (read_lastfm, lambda p: _dirty.write_lastfm_dirty(p / "l.tsv")),
        (read_kaggle, lambda p: _dirty.write_kaggle_dirty(p / "k.csv")),
        (read_mpd, lambda p: _dirty.write_mpd_dirty(p / "mpd")),
    ],
)
def test_two_runs_give_the_same_tables(tmp_path: Path, reader: Any, write: Any) -> None:
    source = write(tmp_path)
    a = run(reader, source, tmp_path / "a")
    b = run(reader, source, tmp_path / "b")
    for table in TABLES:
        assert a.table(table).equals(b.table(table)), table
    assert a.quarantine == b.quarantine


@pytest.mark.slow
def test_lastfm_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Streaming: four times the lines must not take (much) more Python memory while reading."""

    def peak(lines: int) -> tuple[int, int]:
        path = _dirty.write_lastfm_big(tmp_path / f"big{lines}.tsv", lines)
        sink = TableSink(tmp_path / f"out{lines}", chunk_rows=5_000)
        tracemalloc.start()
        try:
            read_lastfm(path, sink)
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        report = sink.close()
        assert report.rows["plays"] == lines and report.total_rejected == 0
        return top, path.stat().st_size

    small, _ = peak(30_000)
    big, size = peak(120_000)
    assert big < 1.5 * small and big < size / 2, (small, big, size)


@pytest.mark.slow
@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference data not present")
def test_reference_synthetic_folder(tmp_path: Path) -> None:
    r = run(read_sessions_folder, REFERENCE, tmp_path / "out")
    assert r.report.total_rejected == 0
    assert dict(r.report.rows) == {
        "plays": 230_577,
        "users": 1_000,
        "songs": 5_000,
        "artists": 500,
        "genres": 35,
        "song_genres": 8_673,
        "artist_genres": 835,
    }
    plays = r.table("plays")
    assert plays.column("session_id").null_count == 0
    truth = json.loads((r.out / "truth.json").read_text())
    assert len(truth["users"]) == 1_000
    assert sum(len(u["genre_prefs"]) for u in truth["users"].values()) == 2_984


# -- duplicates, long values (issue 16) ------------------------------------------------------


def test_lastfm_with_every_defect_counts_each_row_once(tmp_path: Path) -> None:
    path = _dirty.write_lastfm_every_defect(tmp_path / "plays.tsv")
    r = run(read_lastfm, path, tmp_path / "out")
    assert r.report.read == {"lastfm": 12}
    assert r.rejected("lastfm") == {
        "id_too_long": 1,
        "bad_id": 1,
        "bad_timestamp": 1,
        "column_count": 1,
        "truncated": 1,
    }
    assert r.report.duplicates == {"lastfm": 2}
    assert r.report.rows["plays"] == 5 == len(r.rows("plays"))
    # read = valid + rejected + duplicates, row for row
    assert 5 + r.report.total_rejected + sum(r.report.duplicates.values()) == 12
    assert r.record("id_too_long", 8)["field"] == "userid"
    songs = {s["name"] for s in r.rows("songs")}
    assert _dirty.long_name("track", 10_000) in songs


def test_duplicate_plays_of_a_sessions_csv(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    rows = [
        "user_id,track_id,artist_id,timestamp,ms_played,track_duration_ms",
        "U1,T1,A1,2024-01-01T00:00:00,200000,240000",
        "U1,T1,A1,2024-01-01T00:00:00,200000,240000",  # the same play again
        "U1,T1,A1,2024-01-01T00:00:00.000+00:00,100,240000",  # same user, time, track
        "U1,T1,A1,2024-01-01T00:04:00,200000,240000",  # a later play of the same song
        "U2,T1,A1,2024-01-01T00:00:00,200000,240000",  # another user at the same time
    ]
    (folder / "synthetic_sessions.csv").write_text("\n".join(rows) + "\n")
    r = run(read_sessions_folder, folder, tmp_path / "out")
    assert r.report.duplicates == {"sessions": 2}
    plays = r.rows("plays")
    assert len(plays) == r.report.rows["plays"] == 3
    first = next(p for p in plays if p["user_id"] == "U1" and p["pos"] == 0)
    assert first["ms_played"] == 200000  # the first of the repeats is kept as read


def test_identical_kaggle_rows_are_one_entry(tmp_path: Path) -> None:
    path = _dirty._write(
        tmp_path / "spotify_dataset.csv",
        [
            _dirty.KAGGLE_HEADER,
            _dirty.kaggle_line("u1", "Band", "Song A", "Mix"),
            _dirty.kaggle_line("u1", "Band", "Song B", "Mix"),
            _dirty.kaggle_line("u1", "Band", "Song A", "Mix"),  # identical: dropped
            _dirty.kaggle_line("u1", "band", "Song A", "Mix"),  # another spelling: kept
            _dirty.kaggle_line("u2", "Band", "Song A", "Mix"),  # another user's playlist
        ],
    )
    r = run(read_kaggle, path, tmp_path / "out")
    assert r.report.read == {"kaggle": 5} and r.report.duplicates == {"kaggle": 1}
    mix = name_key("u1", "Mix")
    song_a, song_b = name_key("Band", "Song A"), name_key("Band", "Song B")
    u1 = [t for t in r.rows("playlist_tracks") if t["playlist_id"] == mix]
    assert [t["song_id"] for t in sorted(u1, key=lambda t: t["pos"])] == [song_a, song_b, song_a]
    assert [t["pos"] for t in sorted(u1, key=lambda t: t["pos"])] == [0, 1, 2]


@pytest.mark.parametrize("source", ["lastfm", "kaggle", "mpd", "sessions"])
def test_long_names_reach_the_tables_whole(tmp_path: Path, source: str) -> None:
    reader = {"lastfm": read_lastfm, "kaggle": read_kaggle, "mpd": read_mpd}.get(
        source, read_sessions_folder
    )
    r = run(reader, _dirty.write_long_names(source, tmp_path), tmp_path / "out")
    assert r.report.total_rejected == 0, r.quarantine
    names = _dirty.long_names()
    found = {n["name"] for t in ("songs", "artists", "playlists", "genres") for n in r.rows(t)}
    kinds = {"artist", "track"} | {
        "sessions": {"genre"},
        "kaggle": {"playlist"},
        "mpd": {"playlist"},
    }.get(source, set())
    want = {k for k in names if k.split("_")[0] in kinds}
    for key in want:
        assert names[key] in found, key


def test_ids_over_the_limit_are_rejected_with_their_field(tmp_path: Path) -> None:
    from ingest._ids import MAX_ID_BYTES

    folder = tmp_path / "src"
    folder.mkdir()
    fits = "é" * (MAX_ID_BYTES // 2)  # exactly MAX_ID_BYTES bytes
    rows = [
        "user_id,track_id,artist_id,timestamp,ms_played,track_duration_ms",
        f"{fits},T1,A1,2024-01-01T00:00:00,200000,240000",
        f"{fits}x,T1,A1,2024-01-01T00:00:00,200000,240000",
        f"U1,{'T' * 5000},A1,2024-01-01T00:00:00,200000,240000",
        f"U1,T1,{'A' * 100_000},2024-01-01T00:00:00,200000,240000",
    ]
    (folder / "synthetic_sessions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = run(read_sessions_folder, folder, tmp_path / "out")
    assert r.rejected("sessions") == {"id_too_long": 3}
    assert [r.record("id_too_long", n)["field"] for n in (3, 4, 5)] == [
        "user_id",
        "track_id",
        "artist_id",
    ]
    assert [p["user_id"] for p in r.rows("plays")] == [fits]
