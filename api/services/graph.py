"""The API's view of Neo4j: one async driver for reads, a sync driver opened on first write.

Every call goes through :func:`graphdb.graph_errors`, so a stopped server surfaces as
:class:`GraphUnavailable` (503 at the edge) and the driver reconnects by itself when the
server is back: nothing here caches a connection state.
"""

from __future__ import annotations

import threading
from typing import Any

import neo4j

from graphdb import CYPHER_DIR, QueryRegistry, connect, graph_errors
from spotify_engine.settings import Settings

#: Short timeouts so an outage answers 503 in a few seconds instead of hanging clients.
DRIVER_CONFIG: dict[str, Any] = {
    "connection_timeout": 2.0,
    "connection_acquisition_timeout": 5.0,
    "max_transaction_retry_time": 2.0,
    "notifications_min_severity": "OFF",
}


def open_async_driver(settings: Settings) -> neo4j.AsyncDriver:
    return neo4j.AsyncGraphDatabase.driver(
        settings.uri,
        auth=(settings.neo4j_user, settings.password()),
        max_connection_pool_size=64,
        **DRIVER_CONFIG,
    )


class Graph:
    """Named read statements over the async driver; the loader's sync driver for writes."""

    def __init__(self, driver: neo4j.AsyncDriver, settings: Settings):
        self.driver = driver
        self.settings = settings
        self.database = settings.neo4j_database
        self.reg = QueryRegistry(CYPHER_DIR, timeout=settings.api_query_timeout_s)
        self._sync: neo4j.Driver | None = None
        self._sync_lock = threading.Lock()

    async def read(self, name: str, **params: Any) -> list[neo4j.Record]:
        with graph_errors():
            records, _, _ = await self.driver.execute_query(
                self.reg.query(name),
                parameters_=params,
                database_=self.database,
                routing_=neo4j.RoutingControl.READ,
            )
        return records

    async def read_one(self, name: str, **params: Any) -> neo4j.Record | None:
        records = await self.read(name, **params)
        return records[0] if records else None

    async def server_version(self) -> str:
        with graph_errors():
            info = await self.driver.get_server_info(database=self.database)
        return str(info.agent)

    def sync_driver(self) -> neo4j.Driver:
        """The driver the ingest loader writes with (threads only; created once)."""
        with self._sync_lock:
            if self._sync is None:
                self._sync = connect(self.settings, **DRIVER_CONFIG)
            return self._sync

    async def close(self) -> None:
        await self.driver.close()
        if self._sync is not None:
            self._sync.close()
