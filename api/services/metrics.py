"""Prometheus metrics (``prometheus-client``), served at ``GET /metrics``.

What a deployment watches: requests and their latency per route template (``/users/{user_id}
/recommendations``, never the raw path, so the label set stays small), hits and misses of the
answer cache by kind, the run serving each task, and Neo4j errors by type.

The metrics live in one :class:`CollectorRegistry` per process. Under ``serve --workers 2``
each uvicorn worker is its own process and answers ``/metrics`` with its own figures (the
``worker`` label of the gauges is its pid), so a scrape sees one worker; docs/api.md says how
to deploy for exact figures. prometheus-client's multiprocess mode is not used: it needs a
shared directory prepared before the workers start, which uvicorn does not do.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry()
WORKER = str(os.getpid())

REQUESTS = Counter(
    "spotify_engine_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "spotify_engine_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CACHE = Counter(
    "spotify_engine_cache_lookups",
    "Lookups of the answer cache, by kind of answer and result (hit or miss)",
    ["kind", "result"],
    registry=REGISTRY,
)
NEO4J_ERRORS = Counter(
    "spotify_engine_neo4j_errors",
    "Failed Neo4j calls, by the typed error they became",
    ["error"],
    registry=REGISTRY,
)
ACTIVE_RUN = Gauge(
    "spotify_engine_active_run",
    "1 for the run that serves each task (label run_id; none when no run is active)",
    ["task", "run_id", "worker"],
    registry=REGISTRY,
)
MODEL_LOADED = Gauge(
    "spotify_engine_model_loaded",
    "1 when the task's active model is loaded for live use, 0 otherwise",
    ["task", "worker"],
    registry=REGISTRY,
)

#: The route label of requests no route matched (404s of unknown paths).
UNMATCHED = "<unmatched>"


#: Label children by (metric, *labels), resolved once: ``labels()`` resolves them anew each
#: call, and a request makes a dozen such calls. Routes, statuses and cache kinds are few.
_CHILDREN: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def cache_lookup(kind: str, hit: bool) -> None:
    _child(CACHE, kind, "hit" if hit else "miss").inc()


def neo4j_error(exc: BaseException) -> None:
    NEO4J_ERRORS.labels(type(exc).__name__).inc()


def render(*, active: Mapping[str, str | None], loaded: Mapping[str, bool]) -> tuple[bytes, str]:
    """The exposition text and its content type, with the active runs as of now."""
    ACTIVE_RUN.clear()
    for task, run_id in active.items():
        ACTIVE_RUN.labels(task, run_id or "none", WORKER).set(1)
    for task, on in loaded.items():
        MODEL_LOADED.labels(task, WORKER).set(1 if on else 0)
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task, unlike ``BaseHTTPMiddleware``): counts each
    HTTP request and times it under its route template, read from ``scope["route"]`` once the
    router has matched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope.get("method", "")
            _child(LATENCY, method, route).observe(time.perf_counter() - start)
            _child(REQUESTS, method, route, str(status)).inc()
