"""Shared pieces of the CLI: settings, the console, one driver per command, progress bars,
the export and write-back with progress, the metrics table."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from graphdb import connect, verify
from spotify_engine.errors import ModelError
from spotify_engine.settings import Settings, get_settings

console = Console(width=None if sys.stdout.isatty() else 140)


def settings() -> Settings:
    return get_settings()


def run_or_active(run: str | None, task: str = "user") -> Any:
    """The named run, or the active run of ``task`` (:func:`gnn.resolve_run`)."""
    from gnn import resolve_run

    return resolve_run(Path(settings().runs_dir), task, run)


@contextlib.contextmanager
def open_driver(s: Settings | None = None) -> Iterator[neo4j.Driver]:
    """Connect, verify, yield, close: the one driver of a CLI command."""
    s = s or get_settings()
    driver = connect(s)
    try:
        verify(driver)
        yield driver
    finally:
        driver.close()


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


METRIC_COLUMNS = (
    "recall@10",
    "ndcg@10",
    "hit_rate@10",
    "mrr@10",
    "recall@20",
    "ndcg@20",
    "coverage@10",
)


def quiet_torch() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch_geometric")


def progress_bars() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def export_with_progress(driver: neo4j.Driver, database: str) -> Any:
    """Export the whole graph with a progress bar per phase."""
    from gnn import export_snapshot

    with progress_bars() as bar:
        tasks: dict[str, Any] = {}

        def cb(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"export {phase}", total=max(total, 1))
            bar.update(tasks[phase], completed=done, total=max(total, 1))

        return export_snapshot(driver, database, progress=cb)


def export_graph(driver: neo4j.Driver, database: str) -> Any:
    """Export the whole graph with a progress bar; it must hold plays."""
    snap = export_with_progress(driver, database)
    if snap.num_plays == 0:
        raise ModelError(
            "the graph has no plays to train on",
            hint="load data first: spotify-engine ingest synthetic",
        )
    return snap


def metrics_table(
    rows: dict[str, dict[str, Any]], title: str, extra: tuple[str, ...] = ()
) -> Table:
    table = Table(title=title)
    table.add_column("model")
    cols = [c for c in (*METRIC_COLUMNS, *extra) if any(c in r for r in rows.values())]
    for c in cols:
        table.add_column(c, justify="right")
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c)
            if v is None:
                cells.append("-")
            elif c == "parameters":
                cells.append(f"{int(v):,}")
            elif isinstance(v, float):
                cells.append(f"{v:.1f}" if c.endswith("seconds") else f"{v:.4f}")
            else:
                cells.append(f"{v:,}" if isinstance(v, int) else str(v))
        table.add_row(name, *cells)
    return table


def _bar_callback(bar: Progress, labels: dict[str, str] | None = None) -> Any:
    """A ``progress(phase, done, total)`` callback drawing one bar per phase (training is one
    step: 0/1 until it is done, with the elapsed time)."""
    tasks: dict[str, Any] = {}
    labels = labels or {}

    def cb(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(labels.get(phase, phase), total=max(total, 1))
        bar.update(tasks[phase], completed=done, total=max(total, 1))

    return cb


def print_written(res: Any) -> None:
    console.print(
        f"wrote {res.recommendations:,} recommendations with {res.evidence:,} evidence edges, "
        f"{res.similar:,} SIMILAR_TO and {res.affinity:,} AFFINITY edges in "
        f"{res.write_seconds:.1f}s (explanations computed in {res.explain_seconds:.1f}s)"
    )


def train_and_write_back(
    driver: neo4j.Driver | None,
    exp: Any,
    model: str,
    *,
    overrides: dict[str, Any] | None = None,
    k: int = 10,
) -> Any:
    """:func:`gnn.users.train_and_write_back` with a bar per phase (write-back only with a
    driver); prints what was written."""
    from gnn.users import train_and_write_back as publish

    s = settings()
    label = f"train {model} (early stopping on validation NDCG@10)"
    with progress_bars() as bar:
        out = publish(
            exp,
            model,
            runs_root=Path(s.runs_dir),
            driver=driver,
            database=s.neo4j_database,
            overrides=overrides,
            k=k,
            progress=_bar_callback(bar, {"train": label}),
        )
    if out.writeback is not None:
        print_written(out.writeback)
    return out
