"""Shared pieces of the CLI: settings, the console, one driver per command."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
from rich.console import Console

from graphdb import connect, verify
from spotify_engine.errors import NotFound
from spotify_engine.settings import Settings, get_settings

console = Console(width=None if sys.stdout.isatty() else 140)


def settings() -> Settings:
    return get_settings()


def run_or_active(run: str | None, task: str = "user") -> Any:
    """The named run, or the active run of ``task``; one-line errors when there is none, the
    id is unknown, or the run serves another task."""
    from gnn._registry import get_active, load_run

    root = Path(settings().runs_dir)
    run_id = run or get_active(root, task=task)
    hint = "train one: spotify-engine train" + ("" if task == "user" else f" --task {task}")
    if run_id is None:
        raise NotFound(f"no active {task} run in {root}", hint=hint)
    try:
        info = load_run(root, run_id)
    except (LookupError, ValueError):
        raise NotFound(
            f"no run {run_id!r} in {root}", hint="see spotify-engine models list"
        ) from None
    if info.task != task:
        raise NotFound(
            f"run {run_id} serves the {info.task} task, not {task}",
            hint=f"pick a run trained with --task {task}",
        )
    return info


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
