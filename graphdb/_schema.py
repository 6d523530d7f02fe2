"""Apply the schema (constraints and indexes) and read graph statistics."""

from __future__ import annotations

from dataclasses import dataclass

import neo4j

from graphdb._driver import graph_errors
from graphdb._registry import QueryRegistry, get_registry


@dataclass(frozen=True)
class GraphStats:
    """Counts per label and per relationship type."""

    labels: dict[str, int]
    relationships: dict[str, int]

    @property
    def nodes(self) -> int:
        return sum(self.labels.values())


def apply_schema(
    driver: neo4j.Driver, database: str, registry: QueryRegistry | None = None
) -> list[str]:
    """Run every ``schema/*`` statement (all ``IF NOT EXISTS``) and wait for indexes to be online.

    Returns the statement names applied; running it twice changes nothing.
    """
    reg = registry or get_registry()
    names = reg.names("schema")
    with graph_errors():
        for name in names:
            driver.execute_query(reg.query(name), database_=database)
        driver.execute_query(reg.query("db/await_indexes"), seconds=300, database_=database)
    return names


def schema_objects(driver: neo4j.Driver, database: str) -> list[dict[str, object]]:
    reg = get_registry()
    with graph_errors():
        records, _, _ = driver.execute_query(
            reg.query("db/list_schema"), database_=database, routing_=neo4j.RoutingControl.READ
        )
    return [r.data() for r in records]


def graph_stats(driver: neo4j.Driver, database: str) -> GraphStats:
    reg = get_registry()
    with graph_errors():
        records, _, _ = driver.execute_query(
            reg.query("db/graph_counts"), database_=database, routing_=neo4j.RoutingControl.READ
        )
    rec = records[0]
    labels = {d["label"]: int(d["count"]) for d in rec["labels"] if d["count"]}
    rels = {d["type"]: int(d["count"]) for d in rec["types"] if d["count"]}
    return GraphStats(labels=dict(sorted(labels.items())), relationships=dict(sorted(rels.items())))


def wipe_graph(driver: neo4j.Driver, database: str) -> None:
    """Delete all nodes and relationships; the schema stays. Batched auto-commit transactions."""
    reg = get_registry()
    with graph_errors(), driver.session(database=database) as session:
        session.run(reg.query("db/wipe_relationships")).consume()
        session.run(reg.query("db/wipe_nodes")).consume()
