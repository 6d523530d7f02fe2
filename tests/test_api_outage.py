"""The API survives a Neo4j outage (issue 6): 503 with Retry-After while the server is down,
200 again once it is back, without restarting the API.

Runs on a dedicated, throwaway Neo4j instance on free ports so stopping it cannot disturb
the other tests. The API here has no API key configured, so writes are refused with 403.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _api_world import free_port, run_server, server_env

from graphdb import LocalServer, apply_schema, connect, java_executable, verify
from spotify_engine.settings import Settings

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


@pytest.fixture(scope="module")
def outage_server() -> Iterator[LocalServer]:
    try:
        java_executable(Settings())
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Java for a second local Neo4j: {exc}")
    home = Path.home() / ".spotify-engine" / "neo4j-api-outage"
    settings = Settings(
        neo4j_home=home,
        bolt_port=free_port(),
        http_port=free_port(),
        heap_size="512m",
        pagecache_size="64m",
    )
    server = LocalServer(settings)
    server.install()
    server.start()
    yield server
    server.stop()


def _wait(client: httpx.Client, path: str, status: int, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(path)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def _sample(text: str, series: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(series))


def test_503_while_neo4j_is_down_then_recovers(outage_server: LocalServer, tmp_path: Path) -> None:
    s = outage_server.settings
    drv = connect(s)
    verify(drv)
    apply_schema(drv, s.neo4j_database)
    drv.execute_query(
        "MERGE (s:Song {id: 'OUT1'}) SET s.name = 'Outage Song'", database_=s.neo4j_database
    )
    drv.close()
    env = server_env(s, SPOTIFY_ENGINE_RUNS_DIR=str(tmp_path / "runs"))
    with (
        run_server(env, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/songs/OUT1").json()["name"] == "Outage Song"
        r = client.post(
            "/events/plays",
            json={"user_id": "u1", "plays": [{"song_id": "OUT1", "at": "2026-01-01T00:00:00Z"}]},
            headers={"X-API-Key": "anything"},
        )
        assert r.status_code == 403 and "SPOTIFY_ENGINE_API_KEY" in r.json()["hint"]

        outage_server.stop()
        t0 = time.monotonic()
        r = client.get("/songs/OUT1")
        assert r.status_code == 503, r.text
        assert time.monotonic() - t0 < 15, "an outage must answer quickly, not hang"
        assert r.headers["retry-after"] == "5"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "not reachable" in r.json()["detail"]
        assert client.get("/ready").status_code == 503
        h = client.get("/health")
        assert h.status_code == 200 and h.json()["status"] == "degraded"
        assert h.json()["neo4j"]["reachable"] is False
        # Issue 14: the outage is counted, and /metrics itself needs no Neo4j.
        m = client.get("/metrics")
        assert m.status_code == 200
        assert _sample(m.text, 'spotify_engine_neo4j_errors_total{error="GraphUnavailable"}') >= 1

        outage_server.start()
        r = _wait(client, "/songs/OUT1", 200, timeout=60)
        assert r.status_code == 200 and r.json()["name"] == "Outage Song"
        assert server.proc.poll() is None  # the same API process, never restarted
        assert client.get("/ready").status_code == 200
        assert client.get("/health").json()["status"] == "ok"
