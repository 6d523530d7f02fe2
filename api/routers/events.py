"""Recording plays (needs the API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import ApiKey, CacheDep, GraphDep
from api.schemas import PlaysBatch, PlaysRecorded, Problem
from api.services import events

router = APIRouter(prefix="/events", tags=["events"])


@router.post(
    "/plays",
    response_model=PlaysRecorded,
    status_code=201,
    responses={
        200: {"model": PlaysRecorded, "description": "duplicate batch: nothing changed"},
        401: {"model": Problem, "description": "no X-API-Key"},
        403: {"model": Problem, "description": "wrong key, or writes disabled"},
        404: {"model": Problem, "description": "unknown song"},
    },
)
async def post_plays(
    body: PlaysBatch,
    response: Response,
    graph: GraphDep,
    cache: CacheDep,
    _key: ApiKey,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=200, description="one key per batch")
    ] = None,
) -> PlaysRecorded:
    """Record a batch of plays as one session; the same batch (same key) is recorded once."""
    out = await events.record_plays(
        graph=graph, cache=cache, batch=body, idempotency_key=idempotency_key
    )
    if out.duplicate:
        response.status_code = 200
    return out
