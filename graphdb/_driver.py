"""The drivers, created from Settings, and the single place driver exceptions are translated.

Every driver of the project is made here (:func:`connect`, :func:`connect_async`; a test
rejects ``GraphDatabase.driver`` anywhere else), so every one gets the same defaults: server
notifications off. Our statements are fixed and tested; a notification such as the
deprecation of ``id()`` (kept in ``cypher/export`` because integer ids are far cheaper to move
than ``elementId`` strings) is advice for someone writing queries, and the driver would log
it as a warning on every run of the statement, into the user's output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import neo4j
from neo4j import exceptions as nx

from graphdb._registry import get_registry
from spotify_engine.errors import AuthFailed, GraphError, GraphUnavailable, QueryFailed
from spotify_engine.settings import Settings

T = TypeVar("T")

#: Driver settings for a service: short timeouts, so that an outage answers (503) within a few
#: seconds instead of hanging clients. ``connect(settings, **FAIL_FAST)``.
FAIL_FAST: Mapping[str, Any] = MappingProxyType(
    {
        "connection_timeout": 2.0,
        "connection_acquisition_timeout": 5.0,
        "max_transaction_retry_time": 2.0,
    }
)

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


def _config(config: dict[str, Any]) -> dict[str, Any]:
    config.setdefault("connection_acquisition_timeout", 30.0)
    # Server notifications (e.g. "relationship type does not exist yet" on a first load, or
    # "id() is deprecated" on an export) are advice for humans writing queries, not errors.
    config.setdefault("notifications_min_severity", "OFF")
    return config


def connect(settings: Settings, **config: Any) -> neo4j.Driver:
    """A driver for the configured server (not yet verified; see :func:`verify`).

    ``config`` is passed to ``neo4j.GraphDatabase.driver`` over our defaults (connection
    acquisition timeout 30 s, server notifications off); see :data:`FAIL_FAST`.
    """
    return neo4j.GraphDatabase.driver(
        settings.uri, auth=(settings.neo4j_user, settings.password()), **_config(config)
    )


def connect_async(settings: Settings, **config: Any) -> neo4j.AsyncDriver:
    """The asyncio twin of :func:`connect`, with the same defaults (for the API's reads)."""
    return neo4j.AsyncGraphDatabase.driver(
        settings.uri, auth=(settings.neo4j_user, settings.password()), **_config(config)
    )


def verify(driver: neo4j.Driver) -> None:
    with graph_errors():
        driver.verify_connectivity()


def probe(settings: Settings) -> tuple[bool, str]:
    """Does Bolt answer with our credentials? Never raises; returns (ok, reason)."""
    try:
        with connect(settings, connection_timeout=2.0, max_connection_lifetime=5) as drv:
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


def forget_bookmarks(driver: neo4j.Driver, database: str) -> None:
    """Replace a driver's ``execute_query`` bookmarks by one of the current store.

    After an offline import (``neo4j-admin database import``) they name transactions of the
    replaced store, which the new one would wait for in vain (``BookmarkTimeout``); a bookmark
    manager only drops bookmarks for new ones. Call it for every driver that wrote to the
    database before the store was replaced (or recreate that driver).
    """
    ping = get_registry().text("db/ping")

    @neo4j.unit_of_work(metadata={"query": "db/ping"})
    def read(tx: neo4j.ManagedTransaction) -> None:
        tx.run(ping).consume()

    with graph_errors(), driver.session(database=database) as session:
        session.execute_read(read)
        fresh = session.last_bookmarks().raw_values
    manager = driver.execute_query_bookmark_manager
    manager.update_bookmarks(manager.get_bookmarks(), fresh)
