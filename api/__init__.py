"""api: the REST service over the graph and the active model runs (FastAPI).

``create_app(settings)`` builds the app; ``spotify-engine serve`` runs it under uvicorn;
``start_api`` / ``stop_api`` run it in the background (the demo).

The app and the predictors are imported on first use: they pull in FastAPI, torch and the
models (about 10 s on two cores), which starting or stopping the background API does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from api._process import start_api, stop_api

if TYPE_CHECKING:
    from api.app import create_app, get_app
    from api.services.predictors import NextSongPredictor, PlaylistContinuer

_LAZY = {
    "NextSongPredictor": "api.services.predictors",
    "PlaylistContinuer": "api.services.predictors",
    "create_app": "api.app",
    "get_app": "api.app",
}

__all__ = [
    "NextSongPredictor",
    "PlaylistContinuer",
    "create_app",
    "get_app",
    "start_api",
    "stop_api",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'api' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
