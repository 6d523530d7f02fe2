"""cli: the top floor, the ``spotify-engine`` command line; it parses, calls and prints.

Nothing imports it (a test checks); the work lives in the packages below.

Errors are rendered here and only here: one line ``error: ...; try ...`` and a non-zero exit,
no traceback for the mistakes a user can make (set ``SPOTIFY_ENGINE_DEBUG=1`` for one).
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from cli._browser import browser_app
from cli._data import data_app
from cli._db import db_app
from cli._demo import demo
from cli._ingest import ingest_app
from cli._models import evaluate, explain, models_app, recommend, train
from cli._neo4j import neo4j_app
from cli._online import online
from cli._serve import serve
from spotify_engine.errors import SpotifyEngineError

app = typer.Typer(
    name="spotify-engine",
    help="Music recommendations you can query and trust: Neo4j + graph attention networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(neo4j_app, name="neo4j")
app.add_typer(db_app, name="db")
app.add_typer(browser_app, name="browser")
app.add_typer(ingest_app, name="ingest")
app.add_typer(data_app, name="data")
models_app.command("online")(online)
app.add_typer(models_app, name="models")
for _cmd in (train, evaluate, recommend, explain):
    app.command()(_cmd)
app.command()(demo)
app.command()(serve)

_err = Console(stderr=True)


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("SPOTIFY_ENGINE_LOG_LEVEL", "WARNING"),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        app()
    except SpotifyEngineError as exc:
        if os.environ.get("SPOTIFY_ENGINE_DEBUG"):
            raise
        msg = str(exc).strip()
        first, _, rest = msg.partition("\n")
        line = f"[bold red]error:[/] {escape(first)}"
        if exc.hint:
            line += f"; try: {escape(exc.hint)}"
        _err.print(line, highlight=False, markup=True)
        if rest:
            _err.print(rest, highlight=False, markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        _err.print("interrupted")
        sys.exit(130)
