"""The whole graph as sorted JSON lines, for tests that compare two loads of the same data."""

from __future__ import annotations

import json

import neo4j


def dump(driver: neo4j.Driver, db: str) -> tuple[list[str], list[str]]:
    """Every node and relationship with its properties (the batch record and lock aside)."""
    nodes, _, _ = driver.execute_query(
        "MATCH (n) WHERE NOT n:IngestBatch AND NOT n:IngestLock "
        "RETURN labels(n) AS l, properties(n) AS p",
        database_=db,
    )
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS t, properties(r) AS p, b.id AS b",
        database_=db,
    )
    return (
        sorted(json.dumps(n.data(), sort_keys=True) for n in nodes),
        sorted(json.dumps(r.data(), sort_keys=True) for r in rels),
    )
