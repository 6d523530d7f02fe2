"""The source readers, by name: ``READERS[kind](path, sink, progress=...)``.

Each reader streams one public format into a :class:`~ingest._sink.TableSink`: good rows become
normalised table rows, bad rows become quarantine records with a stable reason code (listed in
``ingest._ids``). Readers never talk to Neo4j. Work that needs a whole table (sessions for play
logs, audio features for Kaggle songs) is registered on the sink and runs when it closes, so
the tables are only complete after ``sink.close()``.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest._gaps import DEFAULT_GAP_MINUTES, assign_sessions, derive_sessions, is_skipped
from ingest._ids import BadField, name_key, normalise_name
from ingest._read_kaggle import read_features, read_kaggle
from ingest._read_lastfm import read_lastfm
from ingest._read_mpd import read_mpd, slice_files
from ingest._read_sessions import read_sessions_folder

__all__ = [
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

Reader = Callable[..., None]

READERS: dict[str, Reader] = {
    "sessions": read_sessions_folder,
    "lastfm": read_lastfm,
    "kaggle": read_kaggle,
    "mpd": read_mpd,
}
