"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import GraphDep, ModelsDep
from api.schemas import Health, Ready
from api.services import health as svc

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Neo4j reachable, active runs, versions")
async def get_health(graph: GraphDep, models: ModelsDep) -> Health:
    return await svc.health(graph=graph, models=models)


@router.get(
    "/ready",
    response_model=Ready,
    summary="200 when requests can be served; 503 while Neo4j is unreachable",
    responses={503: {"description": "Neo4j is unreachable"}},
)
async def get_ready(graph: GraphDep) -> Ready:
    return await svc.ready(graph=graph)
