"""Reader for the Kaggle "Spotify Playlists" dump (``spotify_dataset.csv``), plus audio features.

Rows are ``user_id, artistname, trackname, playlistname``, every field quoted, a space after
each comma; quoted fields may hold commas, doubled quotes and line breaks. Nothing is numbered,
so ids are name keys: songs ``name_key(artist, track)``, artists ``name_key(artist)``,
playlists ``name_key(user_id, playlistname)`` (names differing only in case or spacing are one
playlist). ``pos`` is the order of appearance within the playlist. Rows carry no position or
time, so a row identical to an earlier one (all four fields, byte for byte) cannot be told from
a repeated line: it is dropped and counted as a duplicate (the report's ``duplicates``). A row
that spells the song differently ("band", "SONG a") is a second entry of the song, as read.
Memory: one 128-bit digest per row (about 1 GB for the 12.9M rows of the full dump).

A record is assembled from physical lines until its double quotes balance, instead of trusting
the csv module with the whole stream: one stray quote would otherwise swallow the rest of a
1 GB file into one field. A record still open after ``MAX_RECORD_LINES`` lines gives up its
first line (``unbalanced_quote``) and reading resumes on the next; one still open at the end of
the file is ``truncated``.

The optional features file (``tracks_features.csv`` of the "Spotify 1.2M+ songs" set) is joined
on (first artist, track name), the same key songs get here. It is streamed after the playlists
and only rows for songs already in the sink are kept; they are written into ``songs.parquet``
when the sink closes (songs already flushed cannot be updated earlier).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest._ids import (
    BadField,
    Line,
    Progress,
    decode,
    iter_lines,
    name_key,
    parse_float,
    parse_int,
    reject,
    require_id,
    require_name,
)
from ingest._sink import TableSink
from ingest._tables import AUDIO_FEATURES, SCHEMAS

SOURCE = "kaggle"
COLUMNS = ("user_id", "artistname", "trackname", "playlistname")
FEATURE_COLUMNS = ("name", "artists", *AUDIO_FEATURES, "duration_ms")
MAX_RECORD_LINES = 16
_CHUNK = 100_000
_FIRST_ARTIST = re.compile(r"\[\s*'([^'\\]*)'\s*[,\]]")


@dataclass(slots=True)
class Record:
    """One logical CSV record: first line number, its bytes (inner line ends kept), state."""

    number: int
    data: bytes
    terminated: bool
    problem: str | None = None


def iter_records(
    path: Path,
    progress: Progress | None = None,
    offset: int = 0,
    max_lines: int = MAX_RECORD_LINES,
) -> Iterator[Record]:
    """Stream CSV records whose quoted fields may span lines, resynchronising after damage."""
    lines = iter_lines(path, progress, offset)
    pushback: list[Line] = []
    buf: list[Line] = []
    quotes = 0

    def record(part: list[Line], problem: str | None = None) -> Record:
        data = b"".join(x.data + x.end for x in part[:-1]) + part[-1].data
        return Record(part[0].number, data, part[-1].terminated, problem)

    while True:
        line = pushback.pop() if pushback else next(lines, None)
        if line is None:
            break
        if line.too_long:
            yield record([*buf, line], "line_too_long")
            buf, quotes = [], 0
            continue
        if not buf and not line.data.strip():
            continue
        buf.append(line)
        quotes += line.data.count(b'"')
        if quotes % 2 == 0:
            yield record(buf)
            buf, quotes = [], 0
        elif len(buf) >= max_lines:
            yield record(buf[:1], "unbalanced_quote")
            pushback.extend(reversed(buf[1:]))
            buf, quotes = [], 0
    if buf:
        yield record(buf, "truncated")


def _fields(rec: Record, skipinitialspace: bool) -> list[str]:
    if rec.problem:
        raise BadField(rec.problem, None)
    text = decode(rec.data)
    try:
        return next(csv.reader([text], skipinitialspace=skipinitialspace))
    except csv.Error as exc:
        raise BadField("bad_csv", None, str(exc)) from None


def _header(rec: Record, want: tuple[str, ...], path: Path, skip: bool) -> dict[str, int]:
    header = [h.strip() for h in _fields(rec, skip)]
    missing = [c for c in want if c not in header]
    if missing:
        raise ValueError(f"{path} lacks columns {missing} (header: {header})")
    return {name: header.index(name) for name in want} | {"": len(header)}


def read_kaggle(
    path: Path,
    sink: TableSink,
    *,
    features_path: Path | None = None,
    progress: Progress | None = None,
) -> None:
    """Read ``spotify_dataset.csv`` into users, artists, songs, playlists and playlist tracks.

    ``progress`` gets the cumulative bytes read over the playlists then the features file.

    Raises:
        ValueError: the header lacks a required column.
    """
    path = Path(path)
    cols: dict[str, int] | None = None
    next_pos: dict[str, int] = {}
    entries: set[int] = set()
    for rec in iter_records(path, progress):
        try:
            if cols is None:
                cols = _header(rec, COLUMNS, path, True)
                continue
            sink.read(SOURCE)
            fields = _fields(rec, True)
            if len(fields) != cols[""]:
                raise BadField("column_count", None, f"{len(fields)} fields, want {cols['']}")
            _add_row(sink, next_pos, entries, *(fields[cols[c]] for c in COLUMNS))
        except BadField as exc:
            reject(sink, SOURCE, rec.number, rec.terminated, exc, rec.data)
    if features_path is not None:
        read_features(Path(features_path), sink, progress=progress, offset=path.stat().st_size)


def _add_row(
    sink: TableSink,
    next_pos: dict[str, int],
    entries: set[int],
    user: str,
    artist: str,
    track: str,
    playlist: str,
) -> None:
    user_id = require_id(user, "user_id")
    artist = require_name(artist, "artistname")
    track = require_name(track, "trackname")
    playlist = require_name(playlist, "playlistname")
    artist_id = name_key(artist)
    song_id = name_key(artist, track)
    playlist_id = name_key(user_id, playlist)
    raw = "\x1f".join((user, artist, track, playlist)).encode("utf-8", "surrogatepass")
    entry = int.from_bytes(hashlib.blake2b(raw, digest_size=16).digest())
    if entry in entries:
        sink.report.duplicates[SOURCE] += 1
        return
    entries.add(entry)
    if not sink.has("users", user_id):
        sink.add("users", {"user_id": user_id})
    if not sink.has("artists", artist_id):
        sink.add("artists", {"artist_id": artist_id, "name": artist})
    if not sink.has("songs", song_id):
        sink.add("songs", {"song_id": song_id, "name": track, "artist_id": artist_id})
    pos = next_pos.get(playlist_id)
    if pos is None:
        pos = 0
        sink.add("playlists", {"playlist_id": playlist_id, "name": playlist, "user_id": user_id})
    next_pos[playlist_id] = pos + 1
    sink.add("playlist_tracks", {"playlist_id": playlist_id, "song_id": song_id, "pos": pos})


def first_artist(text: str) -> str:
    """The first name of a Python-style list literal such as ``"['A', 'B']"``."""
    m = _FIRST_ARTIST.match(text.strip())
    if m:
        return m.group(1)
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise BadField("bad_list", "artists", text) from None
    if not isinstance(value, list | tuple) or not value or not isinstance(value[0], str):
        raise BadField("bad_list", "artists", text)
    return value[0]


def read_features(
    path: Path, sink: TableSink, *, progress: Progress | None = None, offset: int = 0
) -> int:
    """Stream a features CSV, keep rows for songs in the sink; returns how many were kept.

    Rows for other songs are skipped unchecked (the file describes 1.2M songs, the playlists a
    different set); a kept row with a bad number is quarantined. The first row per song wins.
    """
    source = f"{SOURCE}:{path.name}"
    cols: dict[str, int] | None = None
    keys: list[str] = []
    values: dict[str, list[float | int | None]] = {c: [] for c in FEATURE_COLUMNS[2:]}
    chunks: list[pa.Table] = []
    kept: set[str] = set()
    for rec in iter_records(path, progress, offset):
        try:
            if cols is None:
                cols = _header(rec, FEATURE_COLUMNS, path, False)
                continue
            sink.read(source)
            fields = _fields(rec, False)
            if len(fields) != cols[""]:
                raise BadField("column_count", None, f"{len(fields)} fields, want {cols['']}")
            name = fields[cols["name"]]
            key = name_key(first_artist(fields[cols["artists"]]), name)
            if key in kept or not sink.has("songs", key):
                continue
            row = {c: parse_float(fields[cols[c]], c) for c in AUDIO_FEATURES}
            row["duration_ms"] = parse_int(
                fields[cols["duration_ms"]], "duration_ms", required=False
            )
        except BadField as exc:
            reject(sink, source, rec.number, rec.terminated, exc, rec.data)
            continue
        kept.add(key)
        keys.append(key)
        for c, v in row.items():
            values[c].append(v)
        if len(keys) >= _CHUNK:
            chunks.append(_features_table(keys, values))
    if keys:
        chunks.append(_features_table(keys, values))
    if chunks:
        features = pa.concat_tables(chunks)
        sink.after_close(f"features:{path}", lambda s: join_features(s, features))
    return len(kept)


def _features_table(keys: list[str], values: dict[str, list[float | int | None]]) -> pa.Table:
    schema = SCHEMAS["songs"]
    cols = {"song_id": pa.array(keys, pa.string())}
    cols |= {c: pa.array(v, schema.field(c).type) for c, v in values.items()}
    keys.clear()
    for v in values.values():
        v.clear()
    return pa.table(cols)


def join_features(sink: TableSink, features: pa.Table) -> None:
    """Fill the songs' empty feature columns from ``features`` (values already there win)."""
    path = sink.out_dir / "songs.parquet"
    songs = pq.read_table(path, schema=SCHEMAS["songs"])
    idx = pc.index_in(songs["song_id"], value_set=features["song_id"].combine_chunks())
    for name in features.column_names[1:]:
        i = songs.schema.get_field_index(name)
        found = pc.take(features[name], idx)
        songs = songs.set_column(i, name, pc.coalesce(songs[name], found))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(songs, tmp)
    os.replace(tmp, path)
