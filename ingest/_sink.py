"""Where readers put what they read: streamed Parquet tables, a quarantine file, a report.

A reader calls ``sink.add(table, row_dict)`` for every good row, ``sink.reject(...)`` for every
bad one, and ``sink.read(source)`` once per source row looked at. Rows are buffered and flushed
to Parquet in chunks, so memory stays bounded whatever the size of the input file.
Rows whose primary key was already added (``dedupe_key``) are dropped silently: songs,
artists and genres repeat on every play line of a log.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingest._tables import SCHEMAS

# Tables whose rows describe an entity, keyed by these columns; later duplicates are dropped.
_KEYS: dict[str, tuple[str, ...]] = {
    "users": ("user_id",),
    "genres": ("genre_id",),
    "artists": ("artist_id",),
    "albums": ("album_id",),
    "songs": ("song_id",),
    "song_genres": ("song_id", "genre_id"),
    "artist_genres": ("artist_id", "genre_id"),
    "playlists": ("playlist_id",),
}


@dataclass
class IngestReport:
    """Counts for the summary table: rows read, loaded and rejected by reason, per source.

    ``duplicates`` counts source rows dropped because an identical record was already read
    (the same scrobble twice: same user, time and track; an identical Kaggle row): valid,
    but loading them again would count one play or one playlist entry twice. ``files``
    says, per input file that a reader takes whole or not at all (MPD slices), ``"loaded"``
    or ``"rejected: <reason>"``.
    """

    read: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def total_read(self) -> int:
        return sum(self.read.values())

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": dict(self.read),
            "rejected": [
                {"source": s, "reason": r, "count": c}
                for (s, r), c in sorted(self.rejected.items())
            ],
            "rows": dict(self.rows),
            "duplicates": dict(self.duplicates),
            "files": dict(self.files),
        }


class TableSink:
    """Collects normalised rows into ``<out_dir>/<table>.parquet`` and rejects into JSON lines.

    Args:
        out_dir: folder for the Parquet tables (created).
        quarantine: path of the quarantine JSON-lines file (created even when empty).
        chunk_rows: rows buffered per table before a Parquet row group is written.
    """

    def __init__(self, out_dir: Path, quarantine: Path | None = None, chunk_rows: int = 50_000):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.quarantine_path = Path(quarantine) if quarantine else self.out_dir / "quarantine.jsonl"
        self.quarantine_path.parent.mkdir(parents=True, exist_ok=True)
        self._quarantine = self.quarantine_path.open("w", encoding="utf-8")
        self.chunk_rows = chunk_rows
        self.report = IngestReport()
        self._buffers: dict[str, list[dict[str, Any]]] = {t: [] for t in SCHEMAS}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._seen: dict[str, set[tuple[Any, ...]]] = {t: set() for t in _KEYS}
        self._closed = False
        self._after_close: dict[str, Callable[[TableSink], None]] = {}

    def after_close(self, name: str, fn: Callable[[TableSink], None]) -> None:
        """Run ``fn(self)`` in ``close()`` once every Parquet file is complete.

        Some work needs a whole table (sessions from a play log sorted per user, audio features
        joined onto songs), which a streaming reader cannot do while rows are still arriving.
        ``fn`` may rewrite Parquet files and call ``reject``; one callback per ``name``.
        """
        self._after_close.setdefault(name, fn)

    def read(self, source: str, n: int = 1) -> None:
        """Count ``n`` source rows (lines, playlists...) looked at."""
        self.report.read[source] += n

    def has(self, table: str, *key: Any) -> bool:
        return tuple(key) in self._seen[table]

    def add(self, table: str, row: dict[str, Any]) -> bool:
        """Add a good row; returns False when an entity row with the same key was already added."""
        keys = _KEYS.get(table)
        if keys is not None:
            key = tuple(row[k] for k in keys)
            seen = self._seen[table]
            if key in seen:
                return False
            seen.add(key)
        buf = self._buffers[table]
        buf.append(row)
        self.report.rows[table] += 1
        if len(buf) >= self.chunk_rows:
            self._flush(table)
        return True

    def reject(
        self,
        *,
        source: str,
        location: str | int,
        reason: str,
        raw: str | None,
        field_name: str | None = None,
        count: int = 1,
    ) -> None:
        """Quarantine one bad source row with where it was, which field and why.

        ``count`` is how many source rows the record stands for (a damaged MPD slice is one
        record for all of its playlists)."""
        record = {
            "source": source,
            "location": location,
            "field": field_name,
            "reason": reason,
            "raw": raw,
            "rows": count,
        }
        self._quarantine.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.report.rejected[(source, reason)] += count

    def _flush(self, table: str) -> None:
        buf = self._buffers[table]
        if not buf:
            return
        schema = SCHEMAS[table]
        cols = {name: [r.get(name) for r in buf] for name in schema.names}
        batch = pa.table(cols, schema=schema)
        writer = self._writers.get(table)
        if writer is None:
            writer = pq.ParquetWriter(self.out_dir / f"{table}.parquet", schema)
            self._writers[table] = writer
        writer.write_table(batch)
        buf.clear()

    def close(self) -> IngestReport:
        """Flush everything; every table gets a file, empty ones included."""
        if self._closed:
            return self.report
        for table in SCHEMAS:
            self._flush(table)
            writer = self._writers.pop(table, None)
            if writer is None:
                pq.write_table(SCHEMAS[table].empty_table(), self.out_dir / f"{table}.parquet")
            else:
                writer.close()
        for fn in self._after_close.values():
            fn(self)
        self._quarantine.close()
        (self.out_dir / "report.json").write_text(json.dumps(self.report.to_dict(), indent=2))
        self._closed = True
        return self.report

    def __enter__(self) -> TableSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
