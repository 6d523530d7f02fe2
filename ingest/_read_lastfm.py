"""Reader for the Last.fm 1K listening log (``userid-timestamp-artid-artname-traid-traname.tsv``).

Six tab-separated fields, no header, ISO UTC timestamps, newest play first per user. The file
is not CSV: names hold raw double quotes, so lines are split on tabs and nothing is unquoted.
Many rows lack MusicBrainz ids; those songs and artists are keyed by their normalised names
(``name_key``), the others by ``mbid:<id>``. A song seen both with and without an MBID becomes
two songs: merging them would need a lookup the log does not give.

Last.fm logs no play length or track duration, so ``ms_played`` is null and no play is a skip.
"""

from __future__ import annotations

from pathlib import Path

from ingest._gaps import DEFAULT_GAP_MINUTES, check_gap, register_sessions
from ingest._ids import (
    BadField,
    Progress,
    decode,
    iter_lines,
    mbid_key,
    name_key,
    parse_ts_ms,
    reject,
    require_id,
    require_name,
)
from ingest._sink import TableSink

SOURCE = "lastfm"
FIELDS = 6


def read_lastfm(
    path: Path,
    sink: TableSink,
    *,
    session_gap_minutes: float = DEFAULT_GAP_MINUTES,
    progress: Progress | None = None,
) -> None:
    """Read a Last.fm 1K TSV into users, artists, songs and plays.

    Sessions are derived by inactivity gap when the sink closes. ``progress`` gets the
    cumulative bytes read.
    """
    check_gap(session_gap_minutes)
    for line in iter_lines(Path(path), progress):
        if not line.data.strip() and not line.too_long:
            continue
        sink.read(SOURCE)
        try:
            if line.too_long:
                raise BadField("line_too_long", None)
            _add_row(sink, decode(line.data))
        except BadField as exc:
            reject(sink, SOURCE, line.number, line.terminated, exc, line.data)
    register_sessions(sink, session_gap_minutes, SOURCE)


def _add_row(sink: TableSink, text: str) -> None:
    fields = text.split("\t")
    if len(fields) != FIELDS:
        raise BadField("column_count", None, f"{len(fields)} fields, want {FIELDS}")
    user, stamp, artist_mbid, artist_name, track_mbid, track_name = fields
    user_id = require_id(user, "userid")
    ts = parse_ts_ms(stamp, "timestamp")
    artist_name = require_name(artist_name, "artname")
    track_name = require_name(track_name, "traname")
    artist_mbid = artist_mbid.strip()
    track_mbid = track_mbid.strip()
    artist_id = mbid_key(artist_mbid, "artid") if artist_mbid else name_key(artist_name)
    song_id = mbid_key(track_mbid, "traid") if track_mbid else name_key(artist_name, track_name)
    if not sink.has("users", user_id):
        sink.add("users", {"user_id": user_id})
    if not sink.has("artists", artist_id):
        sink.add("artists", {"artist_id": artist_id, "name": artist_name})
    if not sink.has("songs", song_id):
        sink.add("songs", {"song_id": song_id, "name": track_name, "artist_id": artist_id})
    sink.add(
        "plays",
        {"user_id": user_id, "song_id": song_id, "ts": ts, "ms_played": None, "skipped": False},
    )
