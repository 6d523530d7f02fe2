"""Reader for the Spotify Million Playlist Dataset: a folder of ``mpd.slice.*.json`` files.

Each slice (about 30 MB, 1,000 playlists) is read whole, one at a time: bounded memory without a
streaming JSON parser. Ids come from the data: songs, artists and albums are Spotify URIs,
playlists ``mpd:<pid>``; MPD playlists have no owner (``user_id`` null). ``modified_at`` is epoch
seconds in the source and epoch ms in the tables.

A slice is taken whole or rejected whole: one that is not valid JSON (damaged, cut short) loads
none of its playlists, and is quarantined once, located by the file and the character offset
where parsing failed (``file@123``), with the reason ``truncated`` or ``invalid_json``; every
playlist it mentions counts as read and rejected, and the report's ``files`` says which slices
were accepted and which rejected. Within a valid slice a playlist missing a required field, or
whose ``num_tracks`` disagrees with its ``tracks`` (``count_mismatch``: the list was cut or
edited), is rejected whole; a bad track (a URI that is not ``spotify:track:`` and 22 base-62
characters, an empty name...) is rejected alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ingest._ids import BOM, MAX_RAW_CHARS, BadField, Progress, has_surrogate, raw_text
from ingest._sink import TableSink

SOURCE = "mpd"
PATTERN = "mpd.slice.*.json"
_PID = re.compile(r'"pid"\s*:\s*(-?\d+)')
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SLICE_START = re.compile(r"mpd\.slice\.(\d+)-")
_URI = {k: re.compile(rf"spotify:{k}:[0-9A-Za-z]{{22}}") for k in ("track", "artist", "album")}


def slice_files(path: Path) -> list[Path]:
    """The slice files of a folder in pid order (or ``[path]`` for a single file)."""
    path = Path(path)
    if not path.is_dir():
        return [path]

    def order(p: Path) -> tuple[int, str]:
        m = _SLICE_START.match(p.name)
        return (int(m.group(1)) if m else -1, p.name)

    return sorted(path.glob(PATTERN), key=order)


def read_mpd(path: Path, sink: TableSink, *, progress: Progress | None = None) -> None:
    """Read MPD slices into artists, albums, songs, playlists and playlist tracks.

    ``sink.read`` counts playlists. ``progress`` gets the cumulative bytes of slices done.

    Raises:
        FileNotFoundError: a folder without any ``mpd.slice.*.json``.
    """
    files = slice_files(path)
    if not files:
        raise FileNotFoundError(f"{path} has no {PATTERN} files")
    done = 0
    for file in files:
        _read_slice(file, sink)
        done += file.stat().st_size
        if progress is not None:
            progress(done)


def _read_slice(file: Path, sink: TableSink) -> None:
    data = file.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        text = data.decode("utf-8")
        check = False
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        check = True
    del data
    check = check or _ESCAPED_SURROGATE.search(text) is not None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        _reject_file(text, file.name, exc, sink)
        return
    playlists = doc.get("playlists") if isinstance(doc, dict) else None
    if not isinstance(playlists, list):
        sink.reject(
            source=SOURCE,
            location=file.name,
            reason="missing_field",
            raw=raw_text(text),
            field_name="playlists",
        )
        sink.report.files[file.name] = "rejected: missing_field playlists"
        return
    for index, playlist in enumerate(playlists):
        _add_playlist(sink, file.name, index, playlist, check)
    sink.report.files[file.name] = "accepted"


def _reject_file(text: str, name: str, error: json.JSONDecodeError, sink: TableSink) -> None:
    """Quarantine a slice that is not valid JSON, whole: none of its playlists loads."""
    truncated = error.pos >= len(text.rstrip()) or not text.rstrip().endswith("}")
    reason = "truncated" if truncated else "invalid_json"
    playlists = max(1, len(_PID.findall(text)))
    sink.read(SOURCE, playlists)
    lo = max(0, error.pos - MAX_RAW_CHARS // 2)
    sink.reject(
        source=SOURCE,
        location=f"{name}@{error.pos}",
        reason=reason,
        raw=raw_text(text[lo : lo + MAX_RAW_CHARS]),
        field_name=None,
        count=playlists,
    )
    sink.report.files[name] = (
        f"rejected: {reason} at character {error.pos:,}, {playlists:,} playlists not loaded"
    )


def _text(obj: dict[str, Any], key: str, check: bool, *, name: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        raise BadField("missing_field", key)
    if not isinstance(value, str):
        raise BadField("bad_type", key, repr(value))
    if check and has_surrogate(value):
        raise BadField("encoding", key)
    if not value.strip():
        raise BadField("empty_name" if name else "missing_field", key)
    return value


def _optional_text(obj: dict[str, Any], key: str, check: bool) -> str | None:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _text(obj, key, check)


def _uri(value: str, field: str, kind: str) -> str:
    """A Spotify URI of ``kind``: ``spotify:<kind>:`` and a 22-character base-62 id."""
    if not _URI[kind].fullmatch(value):
        raise BadField("bad_id", field, value[:100])
    return value


def _count(obj: dict[str, Any], key: str, reason: str = "bad_number") -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadField(reason, key, repr(value))
    return value


def _dump(obj: Any) -> str:
    return raw_text(json.dumps(obj, ensure_ascii=False))


def _add_playlist(sink: TableSink, name: str, index: int, pl: Any, check: bool) -> None:
    sink.read(SOURCE)
    location = f"{name}[{index}]"
    try:
        if not isinstance(pl, dict):
            raise BadField("bad_type", None, type(pl).__name__)
        if "pid" not in pl:
            raise BadField("missing_field", "pid")
        pid = _count(pl, "pid")
        location = f"{name}#{pid}"
        title = _text(pl, "name", check, name=True)
        tracks = pl.get("tracks")
        if tracks is None:
            raise BadField("missing_field", "tracks")
        if not isinstance(tracks, list):
            raise BadField("bad_type", "tracks", type(tracks).__name__)
        modified = _count(pl, "modified_at", "bad_timestamp")
        followers = _count(pl, "num_followers")
        declared = _count(pl, "num_tracks")
        if declared is not None and declared != len(tracks):
            raise BadField("count_mismatch", "num_tracks", f"{declared} != {len(tracks)} tracks")
        playlist_id = f"mpd:{pid}"
        if sink.has("playlists", playlist_id):
            raise BadField("duplicate_id", "pid", str(pid))
    except BadField as exc:
        sink.reject(
            source=SOURCE, location=location, reason=exc.reason, raw=_dump(pl), field_name=exc.field
        )
        return
    sink.add(
        "playlists",
        {
            "playlist_id": playlist_id,
            "name": title,
            "user_id": None,
            "modified_at": None if modified is None else modified * 1000,
            "num_followers": followers,
        },
    )
    for k, track in enumerate(tracks):
        try:
            _add_track(sink, playlist_id, k, track, check)
        except BadField as exc:
            sink.reject(
                source=SOURCE,
                location=f"{name}#{pid}/{k}",
                reason=exc.reason,
                raw=_dump(track),
                field_name=exc.field,
            )


def _add_track(sink: TableSink, playlist_id: str, k: int, t: Any, check: bool) -> None:
    if not isinstance(t, dict):
        raise BadField("bad_type", None, type(t).__name__)
    song_id = _uri(_text(t, "track_uri", check), "track_uri", "track")
    song_name = _text(t, "track_name", check, name=True)
    artist_id = _uri(_text(t, "artist_uri", check), "artist_uri", "artist")
    artist_name = _text(t, "artist_name", check, name=True)
    album_id = _optional_text(t, "album_uri", check)
    if album_id is not None:
        album_id = _uri(album_id, "album_uri", "album")
    album_name = _optional_text(t, "album_name", check)
    duration = _count(t, "duration_ms")
    pos = _count(t, "pos")
    if not sink.has("artists", artist_id):
        sink.add("artists", {"artist_id": artist_id, "name": artist_name})
    if album_id and not sink.has("albums", album_id):
        sink.add(
            "albums", {"album_id": album_id, "name": album_name or album_id, "artist_id": artist_id}
        )
    if not sink.has("songs", song_id):
        sink.add(
            "songs",
            {
                "song_id": song_id,
                "name": song_name,
                "artist_id": artist_id,
                "album_id": album_id,
                "duration_ms": duration,
            },
        )
    sink.add(
        "playlist_tracks",
        {"playlist_id": playlist_id, "song_id": song_id, "pos": k if pos is None else pos},
    )
