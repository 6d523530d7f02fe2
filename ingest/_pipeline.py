"""One ingest, end to end: source -> normalised tables in a work folder -> Neo4j.

The work folder (``<home>/ingest/<source>-<timestamp>/`` unless given) is kept on purpose: it
is the audit trail of the run, with the Parquet tables that were loaded, ``quarantine.jsonl``
(every rejected source row, where it was and why) and ``report.json`` (counts, timings and what
the loader did). Loading is delegated to :class:`~ingest._loader.Loader`, which is idempotent:
running the same input again is answered from its batch record and changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import neo4j

from graphdb import apply_schema
from ingest._bulk import bulk_import, ensure_bulk_target
from ingest._gaps import DEFAULT_GAP_MINUTES
from ingest._loader import Loader, LoadResult
from ingest._read_mpd import slice_files
from ingest._read_sessions import COLUMNS as SESSIONS_COLUMNS
from ingest._read_sessions import SESSIONS_FILE
from ingest._readers import READERS
from ingest._sink import IngestReport, TableSink
from ingest._synthetic import SyntheticConfig, generate
from spotify_engine.errors import IngestError
from spotify_engine.settings import Settings, get_settings

#: Every source ``ingest`` knows: the generator and the four readers.
SOURCES: tuple[str, ...] = ("synthetic", *READERS)

#: ``progress(stage, done, total)``. Stages: ``"read"`` (bytes of input), ``"generate"``
#: (per mille), ``"close"`` (0 then 1: sessions and joins that need whole tables), and
#: ``"load:<phase>"`` (rows of that loader phase; with ``bulk``: ``load:csv`` rows, then the
#: steps ``load:stop``, ``load:import``, ``load:start``, ``load:schema``, 0 then 1).
Progress = Callable[[str, int, int], None]

_PREFERENCES_FILE = "synthetic_user_genre_preferences.csv"


@dataclass
class IngestOutcome:
    """What one ingest did: the reader's report, the loader's result, where the trail lies.

    ``load`` is None for a dry run. ``seconds`` has ``parse`` (reading or generating, including
    the work the sink does when it closes) and, unless dry, ``load``.
    """

    source: str
    input: Path | None
    folder: Path
    report: IngestReport
    load: LoadResult | None = None
    dry_run: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def quarantine(self) -> Path:
        return self.folder / "quarantine.jsonl"

    @property
    def valid(self) -> dict[str, int]:
        """Rows per normalised table that passed validation (what a load writes)."""
        return {k: int(v) for k, v in self.report.rows.items() if v}

    @property
    def loaded(self) -> dict[str, int]:
        """Rows the loader wrote per phase; empty for a dry run or an already applied batch."""
        if self.load is None or self.load.skipped:
            return {}
        return dict(self.load.rows)

    def rejected_by_reason(self) -> dict[tuple[str, str], int]:
        return dict(sorted(self.report.rejected.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "input": None if self.input is None else str(self.input),
            "folder": str(self.folder),
            "dry_run": self.dry_run,
            **self.report.to_dict(),
            "seconds": self.seconds,
            "load": None if self.load is None else asdict(self.load),
        }


def check_input(source: str, path: Path | None, *, features_path: Path | None = None) -> None:
    """Fail fast, before any work, on an unknown source or an input that is not there."""
    if source not in SOURCES:
        raise IngestError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    if source == "synthetic":
        if path is not None:
            raise IngestError("the synthetic source takes no input path")
        return
    if path is None:
        raise IngestError(f"the {source} source needs an input path")
    if not Path(path).exists():
        raise IngestError(f"no such file or folder: {path}")
    if features_path is not None:
        if source != "kaggle":
            raise IngestError(f"--features is only for the kaggle source (got {source})")
        if not Path(features_path).is_file():
            raise IngestError(f"no such features file: {features_path}")


def input_bytes(source: str, path: Path, features_path: Path | None = None) -> int:
    """Bytes a reader will go through, for a progress bar (its ``progress`` counts the same)."""
    path = Path(path)
    if source == "sessions":
        folder = path if path.is_dir() else path.parent
        names = (*SESSIONS_COLUMNS, SESSIONS_FILE, _PREFERENCES_FILE)
        return sum(f.stat().st_size for n in set(names) if (f := folder / n).is_file())
    if source == "mpd":
        return sum(f.stat().st_size for f in slice_files(path) if f.is_file())
    total = path.stat().st_size if path.is_file() else 0
    if features_path is not None:
        total += Path(features_path).stat().st_size
    return total


def default_folder(settings: Settings, source: str) -> Path:
    """``<home>/ingest/<source>-<UTC timestamp>``, made unique with a counter when taken."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = settings.home.expanduser() / "ingest"
    folder = base / f"{source}-{stamp}"
    n = 2
    while folder.exists():
        folder = base / f"{source}-{stamp}-{n}"
        n += 1
    return folder


def ingest(
    source: str,
    path: Path | None = None,
    *,
    driver: neo4j.Driver | None = None,
    settings: Settings | None = None,
    out_dir: Path | None = None,
    dry_run: bool = False,
    session_gap_minutes: float = DEFAULT_GAP_MINUTES,
    features_path: Path | None = None,
    synthetic: SyntheticConfig | None = None,
    batch_size: int | None = None,
    force: bool = False,
    bulk: bool = False,
    progress: Progress | None = None,
) -> IngestOutcome:
    """Read (or generate) ``source`` into a work folder, then load it unless ``dry_run``.

    Args:
        source: one of :data:`SOURCES`.
        path: the input file or folder (None for ``synthetic``).
        driver: an open driver; needed unless ``dry_run`` (a dry run never touches Neo4j).
        settings: default :func:`get_settings`; gives the home folder, database, batch size.
        out_dir: the work folder (default ``<home>/ingest/<source>-<timestamp>``).
        session_gap_minutes: inactivity gap that splits play logs into sessions
            (``sessions`` and ``lastfm``; default 30).
        features_path: Kaggle only: a tracks-features CSV joined onto the songs.
        synthetic: sizes and seed for the generator (default ``SyntheticConfig()``).
        batch_size: rows per write transaction (default ``settings.batch_size``).
        force: load even when the loader has already applied these exact tables.
        bulk: load with ``neo4j-admin database import full`` instead of the loader
            (:func:`ingest._bulk.bulk_import`): the local server's database must be empty; it
            is checked before reading, and the server restarts. ``batch_size`` and ``force``
            do not apply.
        progress: see :data:`Progress`.

    Raises:
        IngestError: unknown source, missing input, unreadable input, nothing to load, a
            non-empty or remote database for ``bulk``, a failed bulk import.
        GraphError: Neo4j failed (see ``spotify_engine.errors``).
    """
    check_input(source, path, features_path=features_path)
    if not dry_run and driver is None:
        raise ValueError("ingest needs a driver unless dry_run is set")
    settings = settings or get_settings()
    if bulk and not dry_run:
        assert driver is not None
        ensure_bulk_target(settings, driver)
    notify: Progress = progress or (lambda stage, done, total: None)
    folder = Path(out_dir) if out_dir is not None else default_folder(settings, source)
    folder.mkdir(parents=True, exist_ok=True)
    outcome = IngestOutcome(
        source=source,
        input=None if path is None else Path(path),
        folder=folder,
        report=IngestReport(),
        dry_run=dry_run,
    )

    t0 = time.perf_counter()
    if source == "synthetic":
        outcome.report = _generate(synthetic or SyntheticConfig(), folder, notify)
    else:
        assert path is not None
        outcome.report = _read(
            source,
            Path(path),
            folder,
            notify,
            session_gap_minutes=session_gap_minutes,
            features_path=features_path,
        )
    outcome.seconds["parse"] = time.perf_counter() - t0

    rows = outcome.report.rows
    if not rows.get("plays") and not rows.get("playlist_tracks"):
        _write_report(outcome)
        raise IngestError(
            f"{source} input {path or folder} gave no plays and no playlist tracks: nothing to "
            f"load ({outcome.report.total_rejected} rows rejected, see {outcome.quarantine})"
        )
    if not dry_run and bulk:
        assert driver is not None
        t0 = time.perf_counter()
        outcome.load = bulk_import(
            folder,
            settings,
            driver=driver,
            source=source,
            progress=lambda phase, done, total: notify(f"load:{phase}", done, total),
        )
        outcome.seconds["load"] = time.perf_counter() - t0
    elif not dry_run:
        assert driver is not None
        t0 = time.perf_counter()
        apply_schema(driver, settings.neo4j_database)
        loader = Loader(
            driver,
            settings.neo4j_database,
            batch_size=batch_size or settings.batch_size,
            progress=lambda phase, done, total: notify(f"load:{phase}", done, total),
        )
        outcome.load = loader.load(folder, source=source, force=force)
        outcome.seconds["load"] = time.perf_counter() - t0
    _write_report(outcome)
    return outcome


def _generate(config: SyntheticConfig, folder: Path, notify: Progress) -> IngestReport:
    summary = generate(
        config, folder, progress=lambda stage, frac: notify("generate", int(frac * 1000), 1000)
    )
    rows = {k: int(v) for k, v in summary.rows.items()}
    report = IngestReport()
    report.read["synthetic"] = sum(rows.values())
    report.rows.update(rows)
    return report


def _read(
    source: str,
    path: Path,
    folder: Path,
    notify: Progress,
    *,
    session_gap_minutes: float,
    features_path: Path | None,
) -> IngestReport:
    total = input_bytes(source, path, features_path)
    options: dict[str, Any] = {}
    if source in ("sessions", "lastfm"):
        options["session_gap_minutes"] = session_gap_minutes
    if source == "kaggle" and features_path is not None:
        options["features_path"] = Path(features_path)

    def on_bytes(done: int) -> None:
        notify("read", min(done, total), total)

    sink = TableSink(folder)
    failed = True
    try:
        READERS[source](path, sink, progress=on_bytes, **options)
        notify("read", total, total)
        failed = False
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IngestError(f"cannot read {source} input {path}: {first}") from exc
    finally:
        if failed:
            sink.close()
    notify("close", 0, 1)
    report = sink.close()
    notify("close", 1, 1)
    return report


def _write_report(outcome: IngestOutcome) -> None:
    """``report.json``: the sink's counts plus what this run did with them."""
    path = outcome.folder / "report.json"
    path.write_text(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
