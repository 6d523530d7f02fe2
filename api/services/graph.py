"""The API's view of Neo4j: an async driver for reads, a sync driver opened on first write.

Both drivers come from :mod:`graphdb` (:func:`graphdb.connect_async`, :func:`graphdb.connect`)
with :data:`graphdb.FAIL_FAST` timeouts. Two, not one: the routes read on the event loop,
which needs the async driver, while ``POST /events/plays`` writes through the ingest
:class:`~ingest.Loader` (the same exactly-once statements the CLI loads with), which is
synchronous and runs in a worker thread; an async driver cannot serve it there. The sync one
is opened only when the first write comes (an API without an API key never writes).

Every call goes through :func:`graphdb.graph_errors`, so a stopped server surfaces as
:class:`GraphUnavailable` (503 at the edge) and the driver reconnects by itself when the
server is back: nothing here caches a connection state.
"""

from __future__ import annotations

import threading
from typing import Any

import neo4j

from api.services.metrics import neo4j_error
from graphdb import CYPHER_DIR, FAIL_FAST, QueryRegistry, connect, connect_async, graph_errors
from spotify_engine.errors import GraphError
from spotify_engine.settings import Settings

#: Connections of the read driver: the API serves many requests at once.
READ_POOL_SIZE = 64


class Graph:
    """Named read statements over the async driver; the loader's sync driver for writes."""

    @classmethod
    def open(cls, settings: Settings) -> Graph:
        """The API's graph: its read driver opened now, the write driver on first use."""
        return cls(
            connect_async(settings, max_connection_pool_size=READ_POOL_SIZE, **FAIL_FAST),
            settings,
        )

    def __init__(self, driver: neo4j.AsyncDriver, settings: Settings):
        self.driver = driver
        self.settings = settings
        self.database = settings.neo4j_database
        self.reg = QueryRegistry(CYPHER_DIR, timeout=settings.api_query_timeout_s)
        self._sync: neo4j.Driver | None = None
        self._sync_lock = threading.Lock()

    async def read(self, name: str, **params: Any) -> list[neo4j.Record]:
        try:
            with graph_errors():
                records, _, _ = await self.driver.execute_query(
                    self.reg.query(name),
                    parameters_=params,
                    database_=self.database,
                    routing_=neo4j.RoutingControl.READ,
                )
        except GraphError as exc:
            neo4j_error(exc)
            raise
        return records

    async def read_one(self, name: str, **params: Any) -> neo4j.Record | None:
        records = await self.read(name, **params)
        return records[0] if records else None

    async def server_version(self) -> str:
        try:
            with graph_errors():
                info = await self.driver.get_server_info(database=self.database)
        except GraphError as exc:
            neo4j_error(exc)
            raise
        return str(info.agent)

    def sync_driver(self) -> neo4j.Driver:
        """The driver the ingest loader writes with (threads only; created once)."""
        with self._sync_lock:
            if self._sync is None:
                self._sync = connect(self.settings, **FAIL_FAST)
            return self._sync

    async def close(self) -> None:
        await self.driver.close()
        if self._sync is not None:
            self._sync.close()
