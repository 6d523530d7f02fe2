"""Shared pieces of the CLI: settings, the console, one driver per command."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import neo4j
from rich.console import Console

from graphdb import connect, verify
from spotify_engine.settings import Settings, get_settings

console = Console(width=None if sys.stdout.isatty() else 140)


def settings() -> Settings:
    return get_settings()


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
