"""Exposures of an online experiment in Neo4j: recorded by the API, read back to compare runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import neo4j

from graphdb._driver import graph_errors
from graphdb._registry import get_registry


def record_exposures(driver: neo4j.Driver, database: str, rows: Sequence[dict[str, Any]]) -> int:
    """Write served lists as ``(User)-[:SAW]->(Exposure)``; returns the exposures created.

    A row: ``user_id``, ``experiment``, ``run_id``, ``at`` (epoch ms), ``songs`` (ids).
    """
    if not rows:
        return 0
    reg = get_registry()
    with graph_errors():
        summary = driver.execute_query(
            reg.query("online/record_exposures"), rows=list(rows), database_=database
        ).summary
    return summary.counters.nodes_created


def exposure_outcomes(driver: neo4j.Driver, database: str, experiment: str) -> list[dict[str, Any]]:
    """Per (user, run) of ``experiment``: ``shown`` distinct songs and ``played`` of them after
    they were first shown (``cypher/online/outcomes``)."""
    reg = get_registry()
    with graph_errors():
        records, _, _ = driver.execute_query(
            reg.query("online/outcomes"),
            experiment=experiment,
            database_=database,
            routing_=neo4j.RoutingControl.READ,
        )
    return [r.data() for r in records]
