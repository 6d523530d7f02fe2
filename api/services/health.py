"""Liveness and readiness: is Neo4j reachable, which runs are active, which versions run."""

from __future__ import annotations

import platform
from importlib import metadata

import neo4j

from api.schemas import ActiveModels, Health, Neo4jHealth, Ready, RunSummary
from api.services.graph import Graph
from api.services.models import ModelService
from spotify_engine.errors import GraphError, NotFound


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


async def health(*, graph: Graph, models: ModelService) -> Health:
    try:
        version = await graph.server_version()
        neo = Neo4jHealth(reachable=True, version=version)
    except GraphError as exc:
        neo = Neo4jHealth(reachable=False, error=str(exc))
    return Health(
        status="ok" if neo.reachable else "degraded",
        neo4j=neo,
        active_runs=dict(models.active),
        versions={
            "spotify_engine": _version("spotify-engine"),
            "neo4j_driver": neo4j.__version__,
            "python": platform.python_version(),
        },
    )


async def ready(*, graph: Graph) -> Ready:
    """Ready when Neo4j answers a query (raises GraphUnavailable -> 503 otherwise)."""
    await graph.read("db/ping")
    return Ready(ready=True)


def summary(run: object, active: set[str]) -> RunSummary:
    return RunSummary(
        run_id=run.run_id,  # type: ignore[attr-defined]
        task=run.task,  # type: ignore[attr-defined]
        model=run.model,  # type: ignore[attr-defined]
        created_at=run.created_at,  # type: ignore[attr-defined]
        num_parameters=run.num_parameters,  # type: ignore[attr-defined]
        train_seconds=run.train_seconds,  # type: ignore[attr-defined]
        metrics={k: v for k, v in run.metrics.items() if isinstance(v, int | float | str | None)},  # type: ignore[attr-defined]
        active=run.run_id in active,  # type: ignore[attr-defined]
    )


def list_models(*, models: ModelService) -> list[RunSummary]:
    active = {r for r in models.active.values() if r}
    return [summary(r, active) for r in reversed(models.runs())]


def active_models(*, models: ModelService) -> ActiveModels:
    active = {r for r in models.active.values() if r}
    out: dict[str, RunSummary | None] = {}
    for task, run_id in models.active.items():
        try:
            out[task] = summary(models.run_info(run_id), active) if run_id else None
        except NotFound:  # the ACTIVE file names a run that was deleted
            out[task] = None
    return ActiveModels(**out, loaded=models.loaded())
