"""Reader for a folder of sessions CSVs, the layout of `docs/examples/sessions/`.

Only ``synthetic_sessions.csv`` (one row per play) is required; the other files enrich the
songs, artists, genres and users it mentions. Companion files are read first so their richer
rows win over the bare rows that plays imply (the sink keeps the first row per key).

``synthetic_user_genre_preferences.csv`` is the generator's hidden truth. It must never become
model input, so it goes to ``<out_dir>/truth.json`` (for explanation checks) and not into a
table.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ingest._gaps import DEFAULT_GAP_MINUTES, check_gap, is_skipped, register_sessions
from ingest._ids import (
    BadField,
    Progress,
    decode,
    iter_lines,
    optional_id,
    parse_float,
    parse_int,
    parse_ts_ms,
    reject,
    require_id,
    require_name,
)
from ingest._sink import TableSink

SESSIONS_FILE = "synthetic_sessions.csv"
TRUTH_FILE = "truth.json"

# file -> columns it must have (extra columns are ignored).
COLUMNS: dict[str, tuple[str, ...]] = {
    "synthetic_genres.csv": ("genre_id", "genre_name", "popularity"),
    "synthetic_artists.csv": ("artist_id", "artist_name", "popularity"),
    "synthetic_artist_genres.csv": ("artist_id", "genre_id", "genre_name"),
    "synthetic_songs.csv": (
        "track_id",
        "track_name",
        "artist_id",
        "artist_name",
        "duration_ms",
        "popularity",
    ),
    "synthetic_song_genres.csv": ("track_id", "genre_id", "genre_name"),
    "synthetic_users.csv": ("user_id", "user_type", "activity_level"),
    SESSIONS_FILE: (
        "user_id",
        "track_id",
        "artist_id",
        "timestamp",
        "ms_played",
        "track_duration_ms",
    ),
    "synthetic_user_genre_preferences.csv": ("user_id", "genre_id", "genre_name", "affinity_score"),
}

Row = dict[str, str]


def _split(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text]))


def iter_csv_rows(
    path: Path,
    sink: TableSink,
    source: str,
    columns: tuple[str, ...],
    progress: Progress | None = None,
    offset: int = 0,
) -> Iterator[tuple[int, Row, bool, str]]:
    """Stream a one-line-per-row CSV with a header as dicts, rejecting rows of the wrong shape.

    Yields ``(line number, row, terminated, raw text)`` for every row that decodes and has as
    many fields as the header; the caller validates values. Blank lines are skipped.

    Raises:
        ValueError: the header lacks one of ``columns`` (this is not the expected file).
    """
    header: list[str] | None = None
    for line in iter_lines(path, progress, offset):
        if header is None:
            header = [h.strip() for h in _split(line.data.decode("utf-8", "replace"))]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(f"{path} lacks columns {missing} (header: {header})")
            continue
        if not line.data.strip() and not line.too_long:
            continue
        sink.read(source)
        try:
            if line.too_long:
                raise BadField("line_too_long", None)
            text = decode(line.data)
            fields = _split(text)
            if len(fields) != len(header):
                raise BadField("column_count", None, f"{len(fields)} fields, want {len(header)}")
        except BadField as exc:
            reject(sink, source, line.number, line.terminated, exc, line.data)
            continue
        yield line.number, dict(zip(header, fields, strict=True)), line.terminated, text


def _genre(sink: TableSink, r: Row) -> None:
    genre_id = require_id(r["genre_id"], "genre_id")
    name = require_name(r["genre_name"], "genre_name")
    popularity = parse_float(r["popularity"], "popularity")
    sink.add("genres", {"genre_id": genre_id, "name": name, "popularity": popularity})


def _artist(sink: TableSink, r: Row) -> None:
    artist_id = require_id(r["artist_id"], "artist_id")
    name = require_name(r["artist_name"], "artist_name")
    popularity = parse_float(r["popularity"], "popularity")
    sink.add("artists", {"artist_id": artist_id, "name": name, "popularity": popularity})


def _tag(table: str, key: str, id_column: str) -> Callable[[TableSink, Row], None]:
    def handle(sink: TableSink, r: Row) -> None:
        entity_id = require_id(r[id_column], id_column)
        genre_id = require_id(r["genre_id"], "genre_id")
        genre_name = r["genre_name"]
        if genre_name.strip() and not sink.has("genres", genre_id):
            sink.add("genres", {"genre_id": genre_id, "name": genre_name})
        sink.add(table, {key: entity_id, "genre_id": genre_id, "weight": 1.0})

    return handle


def _song(sink: TableSink, r: Row) -> None:
    song_id = require_id(r["track_id"], "track_id")
    name = require_name(r["track_name"], "track_name")
    artist_id = optional_id(r["artist_id"], "artist_id")
    duration = parse_int(r["duration_ms"], "duration_ms", required=False)
    popularity = parse_float(r["popularity"], "popularity")
    if artist_id and not sink.has("artists", artist_id):
        artist_name = r["artist_name"] if r["artist_name"].strip() else artist_id
        sink.add("artists", {"artist_id": artist_id, "name": artist_name})
    sink.add(
        "songs",
        {
            "song_id": song_id,
            "name": name,
            "artist_id": artist_id,
            "duration_ms": duration,
            "popularity": popularity,
        },
    )


def _user(sink: TableSink, r: Row) -> None:
    user_id = require_id(r["user_id"], "user_id")
    activity = parse_float(r["activity_level"], "activity_level")
    user_type = r["user_type"].strip() or None
    sink.add("users", {"user_id": user_id, "user_type": user_type, "activity_level": activity})


def _play(sink: TableSink, r: Row) -> None:
    user_id = require_id(r["user_id"], "user_id")
    song_id = require_id(r["track_id"], "track_id")
    artist_id = optional_id(r["artist_id"], "artist_id")
    ts = parse_ts_ms(r["timestamp"], "timestamp")
    ms_played = parse_int(r["ms_played"], "ms_played")
    duration = parse_int(r["track_duration_ms"], "track_duration_ms", required=False)
    if not sink.has("users", user_id):
        sink.add("users", {"user_id": user_id})
    # A play row names no song or artist: such a row adds the node without a name (never
    # its id as a name), so it cannot overwrite the real name an earlier load gave it.
    if artist_id and not sink.has("artists", artist_id):
        sink.add("artists", {"artist_id": artist_id, "name": None})
    if not sink.has("songs", song_id):
        sink.add(
            "songs",
            {"song_id": song_id, "name": None, "artist_id": artist_id, "duration_ms": duration},
        )
    sink.add(
        "plays",
        {
            "user_id": user_id,
            "song_id": song_id,
            "ts": ts,
            "ms_played": ms_played,
            "skipped": is_skipped(ms_played, duration),
        },
    )


_HANDLERS: dict[str, Callable[[TableSink, Row], None]] = {
    "synthetic_genres.csv": _genre,
    "synthetic_artists.csv": _artist,
    "synthetic_artist_genres.csv": _tag("artist_genres", "artist_id", "artist_id"),
    "synthetic_songs.csv": _song,
    "synthetic_song_genres.csv": _tag("song_genres", "song_id", "track_id"),
    "synthetic_users.csv": _user,
    SESSIONS_FILE: _play,
}


def _source(name: str) -> str:
    return "sessions" if name == SESSIONS_FILE else f"sessions:{name}"


def read_sessions_folder(
    path: Path,
    sink: TableSink,
    *,
    session_gap_minutes: float = DEFAULT_GAP_MINUTES,
    progress: Progress | None = None,
) -> None:
    """Read a sessions CSV folder (or its ``synthetic_sessions.csv``) into ``sink``.

    Plays get sessions by inactivity gap when the sink closes (see ``ingest._gaps``).
    ``progress`` gets the cumulative bytes read over all files of the folder.

    Raises:
        FileNotFoundError: the folder has no ``synthetic_sessions.csv``.
        ValueError: a file's header lacks a required column, or the gap is not positive.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not (folder / SESSIONS_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no {SESSIONS_FILE}")
    check_gap(session_gap_minutes)
    offset = 0
    for name, handle in _HANDLERS.items():
        file = folder / name
        if not file.is_file():
            continue
        source = _source(name)
        rows = iter_csv_rows(file, sink, source, COLUMNS[name], progress, offset)
        for number, row, terminated, text in rows:
            try:
                handle(sink, row)
            except BadField as exc:
                reject(sink, source, number, terminated, exc, text)
        offset += file.stat().st_size
    register_sessions(sink, session_gap_minutes, "sessions")
    prefs = folder / "synthetic_user_genre_preferences.csv"
    if prefs.is_file():
        _write_truth(prefs, sink, progress, offset)


def _write_truth(path: Path, sink: TableSink, progress: Progress | None, offset: int) -> None:
    """Hidden genre preferences to ``truth.json``: for checking explanations, never training."""
    source = _source(path.name)
    users: dict[str, dict[str, Any]] = {}
    rows = iter_csv_rows(path, sink, source, COLUMNS[path.name], progress, offset)
    for number, r, terminated, text in rows:
        try:
            user_id = require_id(r["user_id"], "user_id")
            genre_id = require_id(r["genre_id"], "genre_id")
            score = parse_float(r["affinity_score"], "affinity_score", required=True)
        except BadField as exc:
            reject(sink, source, number, terminated, exc, text)
            continue
        entry = users.setdefault(user_id, {"genre_prefs": {}, "favourite_artists": []})
        entry["genre_prefs"][genre_id] = score
    truth = {"users": users}
    (sink.out_dir / TRUTH_FILE).write_text(
        json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8"
    )
