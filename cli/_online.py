"""``models online``: start, show and stop the online comparison of two user-task runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli._common import open_driver, run_or_active, settings

console = Console()


def online(
    start: Annotated[
        str | None,
        typer.Option(
            help="Start: serve this user-task run (the challenger) beside the active one."
        ),
    ] = None,
    share: Annotated[
        float,
        typer.Option(min=0.01, max=0.99, help="With --start: the challenger's share of users."),
    ] = 0.5,
    stop: Annotated[
        bool, typer.Option(help="Stop the running comparison (exposures are kept).")
    ] = False,
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples over users.")] = 2000,
) -> None:
    """Compare two user-task runs online: each user is served one of them (a stable hash of
    the user id), every served list is recorded as an Exposure, and the share of shown songs
    that users later played is compared with a 95% confidence interval."""
    from gnn.core import compare_online, get_active, get_online, start_online, stop_online
    from graphdb import exposure_outcomes

    s = settings()
    root = Path(s.runs_dir)
    if start is not None and stop:
        raise typer.BadParameter("give --start or --stop, not both")
    if start is not None:
        challenger = run_or_active(start)
        if challenger.task != "user":
            raise typer.BadParameter(f"run {challenger.run_id} is a {challenger.task} run")
        control = get_active(root)
        if control is None:
            raise typer.BadParameter("no active user run to compare against; train one first")
        exp = start_online(root, control, challenger.run_id, share)
        console.print(
            f"online comparison {exp.id} started: control {exp.control} "
            f"({1 - exp.share:.0%} of users), challenger {exp.challenger} ({exp.share:.0%}); "
            "API workers pick it up within seconds"
        )
        return
    exp = get_online(root)
    if exp is None:
        console.print(
            "no online comparison is running; start one with: "
            "spotify-engine models online --start RUN"
        )
        return
    with open_driver(s) as driver:
        rows = exposure_outcomes(driver, s.neo4j_database, exp.id)
    result = compare_online(rows, exp.runs, resamples=resamples)
    table = Table(title=f"Online comparison {exp.id} (since {exp.started})")
    for col in ("run", "role", "users", "songs shown", "played after shown", "share", "95% CI"):
        table.add_column(col, justify="left" if col in ("run", "role") else "right")
    for run, role in ((exp.control, "control"), (exp.challenger, "challenger")):
        r = result["runs"][run]
        lo, hi = r["ci"]
        table.add_row(
            run,
            role,
            str(r["users"]),
            str(r["shown"]),
            str(r["played"]),
            f"{r['share']:.3f}" if r["shown"] else "-",
            f"[{lo:.3f}, {hi:.3f}]" if r["shown"] else "-",
        )
    console.print(table)
    d = result["difference"]
    lo, hi = d["ci"]
    if lo == lo:  # not NaN
        console.print(
            f"challenger - control: {d['value']:+.3f} (95% CI [{lo:+.3f}, {hi:+.3f}]): "
            f"{result['verdict']}"
        )
    else:
        console.print(result["verdict"])
    if stop:
        stop_online(root)
        console.print(f"stopped {exp.id}; its exposures stay in the graph")
