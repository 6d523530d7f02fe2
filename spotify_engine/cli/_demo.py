"""``spotify-engine demo``: the README's main job, end to end on an embedded default."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel

from graphdb import LocalServer, apply_schema
from spotify_engine.cli._common import console, open_driver, settings


def demo(
    stop: Annotated[bool, typer.Option("--stop", help="Stop what the demo started.")] = False,
) -> None:
    """Start Neo4j (local server unless NEO4J_URI is set), apply the schema, print how to connect."""
    s = settings()
    server = LocalServer(s) if s.uses_local_server else None
    if stop:
        if server is not None and server.stop():
            console.print("Neo4j stopped")
        return
    if server is not None:
        with console.status("Provisioning Neo4j (first time: downloads from Maven Central) ..."):
            server.install()
        with console.status("Starting Neo4j ..."):
            server.start()
    with open_driver(s) as driver:
        names = apply_schema(driver, s.neo4j_database)
    where = f"password in {s.password_file}" if s.uses_local_server else "password from NEO4J_PASSWORD"
    console.print(
        Panel.fit(
            f"Bolt URI     {s.uri}\n"
            f"Browser      http://localhost:{s.http_port}/browser/\n"
            f"Credentials  user {s.neo4j_user}, {where}\n"
            f"Schema       {len(names)} constraints and indexes applied",
            title="spotify-engine: Neo4j is ready",
        )
    )
