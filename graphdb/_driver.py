"""One driver, created from Settings, and the single place driver exceptions are translated."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import neo4j
from neo4j import exceptions as nx

from spotify_engine.errors import AuthFailed, GraphError, GraphUnavailable, QueryFailed
from spotify_engine.settings import Settings

T = TypeVar("T")

# Every driver exception we catch, and what it becomes. A test checks this covers them all.
ERROR_MAP: tuple[tuple[type[Exception], type[GraphError]], ...] = (
    (nx.AuthError, AuthFailed),
    (nx.ServiceUnavailable, GraphUnavailable),
    (nx.SessionExpired, GraphUnavailable),
    (nx.TransientError, GraphUnavailable),
    (nx.DriverError, GraphUnavailable),
    (nx.ClientError, QueryFailed),
    (nx.DatabaseError, QueryFailed),
    (nx.Neo4jError, QueryFailed),
    (OSError, GraphUnavailable),
)


def translate(exc: Exception) -> GraphError:
    """Map a driver (or socket) exception onto our error tree."""
    for source, target in ERROR_MAP:
        if isinstance(exc, source):
            msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            if target is GraphUnavailable:
                msg = f"Neo4j is not reachable: {msg}"
            elif target is AuthFailed:
                msg = f"Neo4j refused the credentials: {msg}"
            return target(msg.splitlines()[0][:500])
    return GraphError(str(exc))


@contextlib.contextmanager
def graph_errors() -> Iterator[None]:
    """Re-raise driver exceptions as our typed errors."""
    try:
        yield
    except GraphError:
        raise
    except tuple(src for src, _ in ERROR_MAP) as exc:
        raise translate(exc) from exc


def connect(settings: Settings, **config: Any) -> neo4j.Driver:
    """A driver for the configured server (not yet verified; see :func:`verify`)."""
    config.setdefault("connection_acquisition_timeout", 30.0)
    # Server notifications (e.g. "relationship type does not exist yet" on a first load) are
    # advice for humans writing queries, not errors; our statements are fixed and tested.
    config.setdefault("notifications_min_severity", "OFF")
    return neo4j.GraphDatabase.driver(
        settings.uri, auth=(settings.neo4j_user, settings.password()), **config
    )


def verify(driver: neo4j.Driver) -> None:
    with graph_errors():
        driver.verify_connectivity()


def probe(settings: Settings) -> tuple[bool, str]:
    """Does Bolt answer with our credentials? Never raises; returns (ok, reason)."""
    try:
        with neo4j.GraphDatabase.driver(
            settings.uri,
            auth=(settings.neo4j_user, settings.password()),
            connection_timeout=2.0,
            max_connection_lifetime=5,
        ) as drv:
            drv.verify_connectivity()
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - a probe reports, the caller decides
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def run_write(
    driver: neo4j.Driver, database: str, work: Callable[[neo4j.ManagedTransaction], T]
) -> T:
    """Run ``work`` in a managed write transaction (retried on transient errors)."""
    with graph_errors(), driver.session(database=database) as session:
        return session.execute_write(work)


def run_read(
    driver: neo4j.Driver, database: str, work: Callable[[neo4j.ManagedTransaction], T]
) -> T:
    with (
        graph_errors(),
        driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session,
    ):
        return session.execute_read(work)
