"""``spotify-engine ingest ...``: read or generate a source and load it into Neo4j."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from cli._common import console, human_bytes, open_driver, settings
from ingest import (
    DEFAULT_GAP_MINUTES,
    BulkResult,
    IngestOutcome,
    SyntheticConfig,
    check_input,
    ingest,
)

ingest_app = typer.Typer(
    help="Read a source (or generate one), validate it, and load it into Neo4j.",
    no_args_is_help=True,
)

Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Work folder for the tables, quarantine.jsonl and report.json "
        "(default: <home>/ingest/<source>-<timestamp>).",
        show_default=False,
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Read and validate only; do not touch Neo4j.")
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        envvar="SPOTIFY_ENGINE_BATCH_SIZE",
        help="Rows per write transaction (default: settings.batch_size).",
        show_default=False,
    ),
]
Force = Annotated[
    bool, typer.Option("--force", help="Load even when this exact batch was already applied.")
]
Gap = Annotated[
    float,
    typer.Option(
        "--session-gap-minutes",
        min=0.001,
        envvar="SPOTIFY_ENGINE_SESSION_GAP_MINUTES",
        help="A pause longer than this starts a new listening session.",
    ),
]
Bulk = Annotated[
    bool,
    typer.Option(
        "--bulk",
        help="Load with neo4j-admin database import (much faster) into the EMPTY database of "
        "the local server; it stops and restarts the server.",
    ),
]
InputPath = Annotated[Path, typer.Argument(help="Input file or folder.", show_default=False)]


class _Amount(ProgressColumn):
    """Bytes for the read bar, rows for the load bars, percent for the generator."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "rows")
        done, total = int(task.completed), int(task.total or 0)
        if unit == "bytes":
            return Text(f"{human_bytes(done)}/{human_bytes(total)}")
        if unit == "percent":
            return Text(f"{done / 10:.0f}%")
        if unit == "steps":
            return Text("done" if total and done >= total else "")
        return Text(f"{done:,}/{total:,}")


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed or task.fields.get("unit") in ("percent", "steps"):
            return Text("")
        if task.fields.get("unit") == "bytes":
            return Text(f"{human_bytes(int(speed))}/s")
        return Text(f"{speed:,.0f} rows/s")


@contextlib.contextmanager
def _bars(source: str) -> Iterator[Any]:
    """A ``progress(stage, done, total)`` callback drawing one rich bar per stage."""
    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(bar_width=20),
        _Amount(),
        _Rate(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}
    labels = {"read": f"reading {source}", "generate": "generating", "close": "finishing tables"}
    units = {"read": "bytes", "generate": "percent", "close": "steps"}
    labels |= {
        "load:csv": "writing CSV files",
        "load:stop": "stopping Neo4j",
        "load:import": "neo4j-admin import",
        "load:start": "starting Neo4j",
        "load:schema": "applying schema",
    }
    units |= {f"load:{step}": "steps" for step in ("stop", "import", "start", "schema")}

    def update(stage: str, done: int, total: int) -> None:
        task = tasks.get(stage)
        if task is None:
            label = labels.get(stage) or f"writing {stage.removeprefix('load:')}"
            task = progress.add_task(label, total=max(total, 1), unit=units.get(stage, "rows"))
            tasks[stage] = task
        progress.update(task, completed=done, total=max(total, 1))

    with progress:
        yield update


def _summary(outcome: IngestOutcome) -> Table:
    title = f"ingest {outcome.source}" + (
        f": {escape(str(outcome.input))}" if outcome.input else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("name")
    table.add_column("value", justify="right")
    for src, n in sorted(outcome.report.read.items()):
        table.add_row("read", escape(src), f"{n:,}")
    rejected = outcome.rejected_by_reason()
    for (src, reason), n in rejected.items():
        table.add_row("rejected", escape(f"{src}: {reason}"), f"[red]{n:,}[/]")
    if not rejected:
        table.add_row("rejected", "-", "0")
    for src, n in sorted(outcome.report.duplicates.items()):
        table.add_row("duplicates", escape(f"{src}: dropped, already read"), f"{n:,}")
    if not outcome.report.duplicates:
        table.add_row("duplicates", "-", "0")
    for file, state in sorted(outcome.report.files.items()):
        colour = "green" if state == "loaded" else "red"
        table.add_row("file", escape(file), f"[{colour}]{escape(state)}[/]")
    for name, n in sorted(outcome.valid.items()):
        table.add_row("valid", name, f"{n:,}")
    load = outcome.load
    if load is None:
        table.add_row("loaded", "dry run: Neo4j not touched", "-")
    elif load.skipped:
        table.add_row("loaded", f"batch {load.batch_id} already applied (use --force)", "0")
    else:
        for phase, n in load.rows.items():
            table.add_row("loaded", phase, f"{n:,}")
        sessions = f"{load.sessions_new:,} / {load.sessions_existing:,}"
        table.add_row("loaded", "sessions new / already there", sessions)
        table.add_row("loaded", "relationships written", f"{load.relationships:,}")
        if isinstance(load, BulkResult):
            table.add_row("loaded", "nodes written (bulk import)", f"{load.nodes:,}")
            for step, rate in load.rates.items():
                rels = f"{rate['relationships_per_s']:,.0f} rels/s"
                table.add_row("rate", step, f"{rate['rows_per_s']:,.0f} rows/s, {rels}")
    table.add_row("seconds", "parse", f"{outcome.seconds.get('parse', 0.0):.2f}")
    if load is not None:
        for phase, sec in load.seconds.items():
            table.add_row("seconds", f"load: {phase}", f"{sec:.2f}")
        table.add_row("seconds", "load (total)", f"{outcome.seconds.get('load', 0.0):.2f}")
    return table


def _run(source: str, path: Path | None, *, dry_run: bool, **options: Any) -> None:
    s = settings()
    check_input(source, path, features_path=options.get("features_path"))
    with _bars(source) as progress:
        if dry_run:
            outcome = ingest(source, path, settings=s, dry_run=True, progress=progress, **options)
        else:
            with open_driver(s) as driver:
                outcome = ingest(
                    source, path, driver=driver, settings=s, progress=progress, **options
                )
    console.print(_summary(outcome))
    console.print(
        f"quarantine: {outcome.quarantine} ({outcome.report.total_rejected:,} rows)\n"
        f"report:     {outcome.folder / 'report.json'}",
        highlight=False,
        soft_wrap=True,
    )


@ingest_app.command()
def synthetic(
    users: Annotated[int, typer.Option(min=1, help="Listeners.")] = 1000,
    songs: Annotated[int, typer.Option(min=1, help="Catalogue size (>= artists).")] = 5000,
    artists: Annotated[int, typer.Option(min=1, help="Artists.")] = 500,
    days: Annotated[int, typer.Option(min=1, help="Length of the listening period.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 42,
    plays_per_user: Annotated[
        int, typer.Option("--plays-per-user", min=1, help="Mean plays per user.")
    ] = 250,
    plays: Annotated[
        int | None,
        typer.Option(
            "--plays",
            min=1,
            help="About this many plays in all (sets the mean plays per user to plays / users; "
            "overrides --plays-per-user), e.g. --users 20000 --songs 200000 --plays 8000000.",
            show_default=False,
        ),
    ] = None,
    out: Out = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = None,
    force: Force = False,
    bulk: Bulk = False,
) -> None:
    """Generate listening data with planted taste (truth.json) and load it."""
    try:
        sizes: dict[str, Any] = {"songs": songs, "artists": artists, "days": days, "seed": seed}
        if plays is not None:
            config = SyntheticConfig.for_plays(plays, users=users, **sizes)
        else:
            config = SyntheticConfig(users=users, mean_plays_per_user=plays_per_user, **sizes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    _run(
        "synthetic",
        None,
        dry_run=dry_run,
        synthetic=config,
        out_dir=out,
        batch_size=batch_size,
        force=force,
        bulk=bulk,
    )


@ingest_app.command()
def sessions(
    path: InputPath,
    session_gap_minutes: Gap = DEFAULT_GAP_MINUTES,
    out: Out = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = None,
    force: Force = False,
    bulk: Bulk = False,
) -> None:
    """A folder of sessions CSVs (synthetic_sessions.csv and its companion files)."""
    _run(
        "sessions",
        path,
        dry_run=dry_run,
        session_gap_minutes=session_gap_minutes,
        out_dir=out,
        batch_size=batch_size,
        force=force,
        bulk=bulk,
    )


@ingest_app.command()
def lastfm(
    path: InputPath,
    session_gap_minutes: Gap = DEFAULT_GAP_MINUTES,
    out: Out = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = None,
    force: Force = False,
    bulk: Bulk = False,
) -> None:
    """The Last.fm 1K users TSV (userid-timestamp-artid-artname-traid-traname.tsv)."""
    _run(
        "lastfm",
        path,
        dry_run=dry_run,
        session_gap_minutes=session_gap_minutes,
        out_dir=out,
        batch_size=batch_size,
        force=force,
        bulk=bulk,
    )


@ingest_app.command()
def kaggle(
    path: InputPath,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features", help="tracks_features.csv to join audio features.", show_default=False
        ),
    ] = None,
    out: Out = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = None,
    force: Force = False,
    bulk: Bulk = False,
) -> None:
    """The Kaggle Spotify playlists CSV (spotify_dataset.csv)."""
    _run(
        "kaggle",
        path,
        dry_run=dry_run,
        features_path=features,
        out_dir=out,
        batch_size=batch_size,
        force=force,
        bulk=bulk,
    )


@ingest_app.command()
def mpd(
    path: InputPath,
    out: Out = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = None,
    force: Force = False,
    bulk: Bulk = False,
) -> None:
    """Million Playlist Dataset slices (a folder of mpd.slice.*.json, or one slice)."""
    _run(
        "mpd",
        path,
        dry_run=dry_run,
        out_dir=out,
        batch_size=batch_size,
        force=force,
        bulk=bulk,
    )
