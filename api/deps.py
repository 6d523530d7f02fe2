"""``Annotated`` dependency aliases shared by the routers.

All are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, which on
the cached hot path cost more than the request itself (a thread hand-off per dependency).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request

from api.schemas import ID_PATTERN, MAX_SEEDS, ArtistRef, GraphId
from api.services.cache import TTLCache
from api.services.events import check_api_key
from api.services.graph import Graph
from api.services.models import ModelService
from api.services.online import OnlineService
from api.services.rules import Rules
from spotify_engine.settings import Settings


async def _graph(request: Request) -> Graph:
    return request.app.state.graph


async def _models(request: Request) -> ModelService:
    return request.app.state.models


async def _cache(request: Request) -> TTLCache:
    return request.app.state.cache


async def _online(request: Request) -> OnlineService:
    return request.app.state.online


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


GraphDep = Annotated[Graph, Depends(_graph)]
ModelsDep = Annotated[ModelService, Depends(_models)]
CacheDep = Annotated[TTLCache, Depends(_cache)]
SettingsDep = Annotated[Settings, Depends(_settings)]
OnlineDep = Annotated[OnlineService, Depends(_online)]


async def require_api_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(max_length=500, description="the write key")] = None,
) -> None:
    check_api_key(settings=settings, given=x_api_key)


ApiKey = Annotated[None, Depends(require_api_key)]

UserId = Annotated[str, Path(pattern=ID_PATTERN, max_length=200, description="User.id")]
SongId = Annotated[str, Path(pattern=ID_PATTERN, max_length=200, description="Song.id")]
PlaylistId = Annotated[str, Path(pattern=ID_PATTERN, max_length=200, description="Playlist.id")]
K = Annotated[int, Query(ge=1, le=100, description="list length, 1..100")]


ExcludeSongs = Annotated[
    list[GraphId],
    Query(max_length=MAX_SEEDS, description="song ids never to return (repeat the parameter)"),
]
ExcludeArtists = Annotated[
    list[ArtistRef],
    Query(
        max_length=MAX_SEEDS,
        description="artists (id, or name ignoring case) whose songs are never returned",
    ),
]
Genre = Annotated[str | None, Query(min_length=1, max_length=100, description="genre id or name")]


async def _rules(
    exclude_songs: ExcludeSongs = [],  # noqa: B006 - FastAPI copies query defaults
    exclude_artists: ExcludeArtists = [],  # noqa: B006
    genre: Genre = None,
) -> Rules:
    return Rules.of(exclude_songs=exclude_songs, exclude_artists=exclude_artists, genre=genre)


#: ``exclude_songs``, ``exclude_artists`` and ``genre`` query parameters, applied before the top k.
RulesDep = Annotated[Rules, Depends(_rules)]


#: ``max_per_artist`` of the list endpoints other than a user's recommendations.
MaxPerArtist = Annotated[
    int | None,
    Query(ge=1, le=100, description="at most this many songs of one artist (none: no cap)"),
]
