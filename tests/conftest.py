"""Test fixtures: a real Neo4j, chosen in this order.

1. ``NEO4J_URI`` is set: use that server (with ``NEO4J_USER`` / ``NEO4J_PASSWORD``).
2. A Docker engine answers: a throwaway ``neo4j:5.26-community`` container (testcontainers).
3. Otherwise: the project's own local server, in a test instance of its own
   (``~/.spotify-engine/neo4j-test`` on ports 17687/17474 unless the environment says
   otherwise), so tests never touch the demo's data. It is started when not running.

Whatever the route, tests get the same ``Settings`` and driver once connected.
Database tests wipe the graph first: the test server is disposable by design.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault(
    "SPOTIFY_ENGINE_NEO4J_HOME", str(Path.home() / ".spotify-engine" / "neo4j-test")
)
os.environ.setdefault("SPOTIFY_ENGINE_BOLT_PORT", "17687")
os.environ.setdefault("SPOTIFY_ENGINE_HTTP_PORT", "17474")
os.environ.setdefault("SPOTIFY_ENGINE_HEAP_SIZE", "1g")
os.environ.setdefault("SPOTIFY_ENGINE_PAGECACHE_SIZE", "512m")

import neo4j  # noqa: E402

from graphdb import LocalServer, apply_schema, connect, verify, wipe_graph  # noqa: E402
from spotify_engine.settings import Settings, get_settings  # noqa: E402


def _docker_available() -> bool:
    if os.environ.get("SPOTIFY_ENGINE_TEST_BACKEND", "") == "local":
        return False
    if not shutil.which("docker"):
        return False
    try:
        return (
            subprocess.run(
                ["docker", "info"], capture_output=True, timeout=10, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def neo4j_settings() -> Iterator[Settings]:
    """Settings pointing at a running, authenticated Neo4j server."""
    get_settings.cache_clear()
    if os.environ.get("NEO4J_URI"):
        yield Settings()
        return
    if _docker_available():
        from testcontainers.neo4j import Neo4jContainer

        password = "test-" + os.urandom(8).hex()
        container = Neo4jContainer("neo4j:5.26-community", password=password)
        # as the managed server and docker-compose.yml (see ingest/_loader.py)
        container.with_env("NEO4J_db_relationship__grouping__threshold", "1")
        with container:
            yield Settings(neo4j_uri=container.get_connection_url(), neo4j_password=password)
        return
    settings = Settings()
    server = LocalServer(settings)
    started_here = False
    if not server.status().running:
        server.install()
        server.start()
        started_here = True
    yield settings
    if started_here and not os.environ.get("SPOTIFY_ENGINE_KEEP_TEST_SERVER"):
        server.stop()


@pytest.fixture(scope="session")
def driver(neo4j_settings: Settings) -> Iterator[neo4j.Driver]:
    drv = connect(neo4j_settings)
    verify(drv)
    apply_schema(drv, neo4j_settings.neo4j_database)
    yield drv
    drv.close()


@pytest.fixture()
def graph(driver: neo4j.Driver, neo4j_settings: Settings) -> neo4j.Driver:
    """An empty graph with the schema applied."""
    wipe_graph(driver, neo4j_settings.neo4j_database)
    return driver
