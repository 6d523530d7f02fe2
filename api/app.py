"""The FastAPI application: the graph (its Neo4j drivers, see ``api.services.graph``) and the
active model runs, opened once in the lifespan and closed on shutdown.

``create_app(settings)`` builds an app (tests pass their own settings); ``get_app()`` is the
factory ``uvicorn`` calls (``spotify-engine serve``), reading the process-wide settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import errors
from api.lean import serve_ahead
from api.routers import events, health, metrics, models, playlists, sessions, songs, users
from api.services import recommendations
from api.services.cache import TTLCache
from api.services.graph import Graph
from api.services.metrics import MetricsMiddleware
from api.services.models import ModelService
from api.services.online import OnlineService
from spotify_engine.errors import GraphError
from spotify_engine.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: How often the ACTIVE files (and ONLINE.json) are checked for a newly activated run.
REFRESH_EVERY_S = 2.0
#: How often queued exposures of an online experiment are written to Neo4j.
FLUSH_EVERY_S = 1.0

DESCRIPTION = """Recommendations, explanations, next song and playlist continuation from the
spotify-engine graph. Errors are `application/problem+json`; `POST /events/plays` needs the
`X-API-Key` header."""


async def _warm(app: FastAPI) -> None:
    """The cache's warm-up (``recommendations.warm``); an API without its graph starts cold."""
    settings: Settings = app.state.settings
    try:
        done = await recommendations.warm(
            graph=app.state.graph, models=app.state.models, cache=app.state.cache,
            max_users=settings.api_warm_users,
        )  # fmt: skip
    except GraphError as exc:
        log.warning("cache warm-up skipped: %s", exc)
        return
    if done["users"]:
        log.info(
            "cache warm-up: %d users' rows, %d rankings in %.1f s",
            done["users"], done["ranked"], done["seconds"],
        )  # fmt: skip


def _freeze_heap() -> None:
    """Collect, then move every live object (the imported libraries, the loaded model and its
    snapshot) to the collector's permanent generation: full collections then scan only what
    requests allocate. Without it a full collection took 100-300 ms every few seconds under load
    (pauses every in-flight request; the p99 of a rules request was 780 ms at 700 req/s)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    # Fewer, not longer, collections: what requests allocate dies young, while the TTL cache
    # keeps promoting rows to the old generation, whose full scans took 60-80 ms each, about
    # one a second under load, at the default thresholds (700, 10, 10).
    gc.set_threshold(10_000, 50, 100)


async def _watch(app: FastAPI) -> None:
    while True:
        await asyncio.sleep(REFRESH_EVERY_S)
        try:
            changed = await anyio.to_thread.run_sync(app.state.models.refresh)
            changed = await anyio.to_thread.run_sync(app.state.online.refresh) or changed
            if changed:
                app.state.cache.clear()
                _freeze_heap()
        except Exception:  # noqa: BLE001 - keep watching; the next tick tries again
            log.exception("reloading the active runs failed")


async def _flush_exposures(app: FastAPI) -> None:
    """Write an online experiment's queued exposures (none queued: nothing to do)."""
    online: OnlineService = app.state.online
    if online.pending():
        graph: Graph = app.state.graph
        await anyio.to_thread.run_sync(online.flush, graph.sync_driver(), graph.database)


async def _flusher(app: FastAPI) -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        try:
            await _flush_exposures(app)
        except Exception:  # noqa: BLE001 - kept queued; the next tick tries again
            log.exception("writing exposures failed")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.graph = Graph.open(settings)
    app.state.cache = TTLCache(settings.api_cache_ttl_s)
    app.state.models = ModelService(
        Path(settings.runs_dir),
        torch_threads=settings.torch_threads,
        live_explain=settings.api_live_explain,
    )
    await anyio.to_thread.run_sync(lambda: app.state.models.refresh(force=True))
    app.state.online = OnlineService(Path(settings.runs_dir))
    await anyio.to_thread.run_sync(app.state.online.refresh)
    await _warm(app)
    _freeze_heap()
    tasks = [asyncio.create_task(_watch(app)), asyncio.create_task(_flusher(app))]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):  # the last exposures, if Neo4j is still there
            await _flush_exposures(app)
        await app.state.graph.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="spotify-engine",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The API's metrics are Prometheus' (GET /metrics). FastAPI's OpenTelemetry hooks,
        # with no provider configured, still looked one up in the environment on every
        # request (about 1.5 % of the server's CPU under load).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Idempotency-Key"],
        )
    app.add_middleware(MetricsMiddleware)
    errors.install(app, retry_after_s=settings.api_retry_after_s)
    for module in (health, users, songs, sessions, playlists, events, models, metrics):
        app.include_router(module.router)
    # The hottest route, served ahead of FastAPI's router (documented by it as usual).
    serve_ahead(app, users.router, "/users/{user_id}/recommendations")
    return app


def get_app() -> FastAPI:
    """The app for ``uvicorn api.app:get_app --factory``."""
    return create_app(get_settings())
