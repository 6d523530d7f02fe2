"""graphdb: the Neo4j side. A local server, one driver, named Cypher, schema, statistics."""

from graphdb._driver import (
    ERROR_MAP,
    connect,
    graph_errors,
    probe,
    run_read,
    run_write,
    translate,
    verify,
)
from graphdb._registry import CYPHER_DIR, QueryRegistry, Statement, get_registry
from graphdb._schema import GraphStats, apply_schema, graph_stats, schema_objects, wipe_graph
from graphdb._server import LocalServer, ServerStatus, java_executable, port_in_use
from graphdb._writeback import Evidence, RecommendationRow, Writeback, WritebackResult

__all__ = [
    "CYPHER_DIR",
    "ERROR_MAP",
    "Evidence",
    "GraphStats",
    "LocalServer",
    "QueryRegistry",
    "RecommendationRow",
    "ServerStatus",
    "Statement",
    "apply_schema",
    "connect",
    "get_registry",
    "graph_errors",
    "graph_stats",
    "java_executable",
    "port_in_use",
    "probe",
    "run_read",
    "run_write",
    "schema_objects",
    "translate",
    "verify",
    "wipe_graph",
    "Writeback",
    "WritebackResult",
]
