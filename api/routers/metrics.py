"""Prometheus metrics (not in the OpenAPI schema: it is for scrapers, not API clients)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ModelsDep
from api.services import metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def get_metrics(models: ModelsDep) -> Response:
    """Request counts and latencies per route, cache hits, active runs, Neo4j errors."""
    body, media_type = metrics.render(active=models.active, loaded=models.loaded())
    return Response(body, media_type=media_type)
