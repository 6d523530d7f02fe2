"""api: the REST service over the graph and the active model runs (FastAPI).

``create_app(settings)`` builds the app; ``spotify-engine serve`` runs it under uvicorn.
"""

from api.app import create_app, get_app
from api.services.predictors import NextSongPredictor, PlaylistContinuer

__all__ = ["NextSongPredictor", "PlaylistContinuer", "create_app", "get_app"]
