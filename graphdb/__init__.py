"""graphdb: the Neo4j side. Its servers and tools, the drivers, named Cypher, schema, statistics."""

from graphdb._admin import (
    admin_tool_output,
    import_empty_database,
    run_admin_tool,
    stop_and_wait,
)
from graphdb._docker import ComposeNeo4j, docker_available, neo4j_backend
from graphdb._driver import (
    ERROR_MAP,
    FAIL_FAST,
    connect,
    connect_async,
    forget_bookmarks,
    graph_errors,
    probe,
    run_read,
    run_write,
    translate,
    verify,
)
from graphdb._guide import serve_guide
from graphdb._online import exposure_outcomes, record_exposures
from graphdb._registry import CYPHER_DIR, QueryRegistry, Statement, get_registry
from graphdb._schema import GraphStats, apply_schema, graph_stats, schema_objects, wipe_graph
from graphdb._server import LocalServer, ServerStatus, java_executable, port_in_use
from graphdb._writeback import (
    Evidence,
    ExplanationAudit,
    RecommendationRow,
    Writeback,
    WritebackResult,
    audit_explanations,
)

__all__ = [
    "CYPHER_DIR",
    "ERROR_MAP",
    "FAIL_FAST",
    "ComposeNeo4j",
    "Evidence",
    "ExplanationAudit",
    "GraphStats",
    "LocalServer",
    "QueryRegistry",
    "RecommendationRow",
    "ServerStatus",
    "Statement",
    "Writeback",
    "WritebackResult",
    "admin_tool_output",
    "apply_schema",
    "audit_explanations",
    "connect",
    "connect_async",
    "docker_available",
    "exposure_outcomes",
    "forget_bookmarks",
    "get_registry",
    "graph_errors",
    "graph_stats",
    "import_empty_database",
    "java_executable",
    "neo4j_backend",
    "port_in_use",
    "probe",
    "record_exposures",
    "run_admin_tool",
    "run_read",
    "run_write",
    "schema_objects",
    "serve_guide",
    "stop_and_wait",
    "translate",
    "verify",
    "wipe_graph",
]
