"""Listening sessions for play logs that have none, and the skip rule.

Play logs (the sessions CSV, Last.fm) record single plays; the graph wants them grouped into
sessions so that "played next in the same session" means something. A session is a run of one
user's plays with no pause longer than the gap. Grouping needs each user's plays sorted by time,
which a streaming reader cannot do, so readers add plays with ``session_id=None`` and register
:func:`derive_sessions` to run when the sink closes, over the finished ``plays.parquet``.

Memory assumption: the plays table (ids, ints) fits in memory while it is sorted: about
100-150 bytes per play, so 10M plays take 1-1.5 GB. Raw input files are never loaded whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest._sink import TableSink
from ingest._tables import SCHEMAS

DEFAULT_GAP_MINUTES = 30.0
_SKIP_MS = 30_000
_ROW_GROUP = 1 << 20


def is_skipped(ms_played: int | None, duration_ms: int | None) -> bool:
    """A play counts as a skip when it stopped before min(30 s, half the track).

    30 s is the threshold streaming services use to count a play; half the track covers short
    tracks. Without both numbers there is nothing to judge, so the play is not a skip.
    """
    if ms_played is None or not duration_ms:
        return False
    return ms_played < min(_SKIP_MS, 0.5 * duration_ms)


def check_gap(session_gap_minutes: float) -> float:
    if not session_gap_minutes > 0:
        raise ValueError(f"session_gap_minutes must be > 0 (got {session_gap_minutes})")
    return float(session_gap_minutes)


def register_sessions(sink: TableSink, session_gap_minutes: float, source: str) -> None:
    """Have the sink derive sessions for its session-less plays when it closes.

    One gap per sink: the first reader to register sets it (plays of all readers in a sink are
    grouped alike). Exact duplicate plays dropped on the way are counted as ``source``'s
    ``duplicates`` in the sink's report.
    """
    gap = check_gap(session_gap_minutes)

    def _derive(s: TableSink) -> None:
        derived = derive_sessions(s.out_dir / "plays.parquet", session_gap_minutes=gap)
        if derived.duplicates:
            s.report.duplicates[source] += derived.duplicates
            s.report.rows["plays"] -= derived.duplicates

    sink.after_close("sessions", _derive)


def assign_sessions(plays: pa.Table, *, session_gap_minutes: float) -> pa.Table:
    """Fill ``session_id`` and ``pos`` for every row, sorted by user, time, song.

    A new session starts at a user's first play and whenever the pause since the previous play
    ended (``ts + ms_played``; ``ms_played`` unknown counts as 0) is longer than the gap.
    ``session_id`` is ``"<user_id>@<ts of first play>"``, stable across runs.
    Rows are kept as given: :func:`drop_duplicate_plays` first if the log may repeat a play.
    """
    gap_ms = check_gap(session_gap_minutes) * 60_000
    n = plays.num_rows
    if n == 0:
        return plays
    plays = plays.take(_play_order(plays))
    users = pc.dictionary_encode(plays["user_id"].combine_chunks()).indices.to_numpy()
    ts = plays["ts"].to_numpy()
    played = pc.fill_null(plays["ms_played"], 0).to_numpy()
    new = np.ones(n, dtype=bool)
    new[1:] = (users[1:] != users[:-1]) | ((ts[1:] - (ts[:-1] + played[:-1])) > gap_ms)
    starts = np.flatnonzero(new)
    session = np.cumsum(new) - 1
    pos = (np.arange(n) - starts[session]).astype(np.int32)
    first_ts = pa.array(ts[starts][session]).cast(pa.string())
    session_id = pc.binary_join_element_wise(plays["user_id"], first_ts, "@")
    plays = plays.set_column(plays.schema.get_field_index("session_id"), "session_id", session_id)
    return plays.set_column(plays.schema.get_field_index("pos"), "pos", pa.array(pos, pa.int32()))


def _play_order(plays: pa.Table) -> pa.Array:
    return pc.sort_indices(
        plays,
        sort_keys=[("user_id", "ascending"), ("ts", "ascending"), ("song_id", "ascending")],
    )


def drop_duplicate_plays(plays: pa.Table) -> tuple[pa.Table, int]:
    """The plays without exact repeats of one play (same user, time and song), sorted by user,
    time, song; and how many were dropped. The first of a repeat is kept as read (its
    ``ms_played`` and ``skipped``): a log that lists one scrobble twice still heard it once.
    """
    if plays.num_rows == 0:
        return plays, 0
    plays = plays.take(_play_order(plays))
    users = pc.dictionary_encode(plays["user_id"].combine_chunks()).indices.to_numpy()
    songs = pc.dictionary_encode(plays["song_id"].combine_chunks()).indices.to_numpy()
    ts = plays["ts"].to_numpy()
    repeat = np.zeros(plays.num_rows, dtype=bool)
    repeat[1:] = (users[1:] == users[:-1]) & (ts[1:] == ts[:-1]) & (songs[1:] == songs[:-1])
    dropped = int(repeat.sum())
    if dropped:
        plays = plays.filter(pa.array(~repeat))
    return plays, dropped


@dataclass(frozen=True)
class DerivedSessions:
    """What :func:`derive_sessions` did: sessions made, exact duplicate plays dropped."""

    sessions: int
    duplicates: int


def derive_sessions(
    plays_path: Path, *, session_gap_minutes: float = DEFAULT_GAP_MINUTES
) -> DerivedSessions:
    """Rewrite ``plays.parquet`` with sessions for the plays that have none.

    Exact duplicates among those plays (:func:`drop_duplicate_plays`) are dropped first.
    Plays that already carry a ``session_id`` (a source with real sessions) are kept as they
    are. The file is replaced atomically, so a crash leaves the old one.
    """
    plays_path = Path(plays_path)
    table = pq.read_table(plays_path, schema=SCHEMAS["plays"])
    missing = pc.is_null(table["session_id"])
    todo = table.filter(missing)
    if todo.num_rows == 0:
        return DerivedSessions(0, 0)
    todo, dropped = drop_duplicate_plays(todo)
    done = assign_sessions(todo, session_gap_minutes=session_gap_minutes)
    out = pa.concat_tables([table.filter(pc.invert(missing)), done])
    tmp = plays_path.with_name(plays_path.name + ".tmp")
    pq.write_table(out, tmp, row_group_size=_ROW_GROUP)
    os.replace(tmp, plays_path)
    return DerivedSessions(int(pc.count_distinct(done["session_id"]).as_py()), dropped)
