"""The model registry as the API sees it."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ModelsDep
from api.schemas import ActiveModels, RunSummary
from api.services import health as svc

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=list[RunSummary])
async def get_models(models: ModelsDep) -> list[RunSummary]:
    """Every run in the registry, newest first."""
    return svc.list_models(models=models)


@router.get("/active", response_model=ActiveModels)
async def get_active(models: ModelsDep) -> ActiveModels:
    """The active run of each task and whether it is loaded for live use."""
    return svc.active_models(models=models)
