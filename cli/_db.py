"""``spotify-engine db ...``: schema and statistics."""

from __future__ import annotations

import typer
from rich.table import Table

from cli._common import console, open_driver, settings
from graphdb import apply_schema, graph_stats

db_app = typer.Typer(help="Schema and statistics of the graph.")


@db_app.command()
def init() -> None:
    """Apply constraints and indexes (idempotent)."""
    s = settings()
    with open_driver(s) as driver:
        names = apply_schema(driver, s.neo4j_database)
    console.print(f"schema applied: {len(names)} constraints and indexes ({s.uri})")


@db_app.command()
def stats() -> None:
    """Counts per label and relationship type."""
    s = settings()
    with open_driver(s) as driver:
        st = graph_stats(driver, s.neo4j_database)
    table = Table(title=f"Graph at {s.uri}")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("count", justify="right")
    for label, n in st.labels.items():
        table.add_row("node", label, f"{n:,}")
    for rel, n in st.relationships.items():
        table.add_row("relationship", rel, f"{n:,}")
    console.print(table)
