"""``spotify-engine data ...``: look at what is in the graph (profile plots, realism checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli._common import console, open_driver, settings
from ingest import FAIL, PASS, SAMPLE_SONGS, profile_graph, validate_graph

data_app = typer.Typer(
    help="Profile and validate the data in the graph.",
    no_args_is_help=True,
)


@data_app.command()
def profile(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the PNG plots and profile.md (default: <runs_dir>/profile).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Plot genres, plays per user, the long tail, sessions and hours; write profile.md."""
    s = settings()
    folder = out or s.runs_dir / "profile"
    with open_driver(s) as driver, console.status("Profiling the graph ..."):
        result = profile_graph(driver, s.neo4j_database, folder)
    table = Table(title="Data profile", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.numbers.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else escape(str(value)))
    console.print(table)
    console.print(f"report: {result.report}", highlight=False, soft_wrap=True)
    for path in result.plots.values():
        console.print(f"plot:   {path}", highlight=False, soft_wrap=True)


@data_app.command()
def validate(
    sample_songs: Annotated[
        int,
        typer.Option("--sample-songs", min=1, help="Songs whose FOLLOWED_BY counts are recounted."),
    ] = SAMPLE_SONGS,
) -> None:
    """Realism and consistency checks; exits 1 when any check fails."""
    s = settings()
    with open_driver(s) as driver, console.status("Checking the graph ..."):
        checks = validate_graph(driver, s.neo4j_database, sample_songs=sample_songs)
    table = Table(title=f"Data checks ({s.uri})", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("value", justify="right")
    table.add_column("threshold")
    table.add_column("detail", overflow="fold")
    colour = {PASS: "green", FAIL: "bold red"}
    for c in checks:
        value = f"{c.value:,.2f}" if not c.value.is_integer() else f"{int(c.value):,}"
        status = f"[{colour.get(c.status, 'yellow')}]{c.status}[/]"
        table.add_row(c.name, status, value, c.threshold, escape(c.detail))
    console.print(table)
    failed = [c.name for c in checks if c.failed]
    if failed:
        console.print(f"[bold red]{len(failed)} of {len(checks)} checks failed[/]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(checks)} checks passed or were skipped[/]")
