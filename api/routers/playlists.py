"""Playlist continuation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CacheDep, GraphDep, K, MaxPerArtist, ModelsDep, PlaylistId, RulesDep
from api.schemas import PlaylistContinueRequest, PlaylistSuggestions, Problem
from api.services import suggestions
from api.services.rules import Rules

router = APIRouter(prefix="/playlists", tags=["playlists"])
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown playlist or song"}
}


@router.post("/continue", response_model=PlaylistSuggestions, responses=_404)
async def post_continue(
    body: PlaylistContinueRequest, graph: GraphDep, models: ModelsDep, cache: CacheDep
) -> PlaylistSuggestions:
    """Songs to add to a playlist given its songs (ids or Spotify track URIs); unknown songs
    are ignored (and listed), the rules apply before the top k is cut."""
    return await suggestions.continue_playlist(
        graph=graph,
        models=models,
        cache=cache,
        song_ids=body.seeds,
        name=body.name,
        k=body.k,
        rules=Rules.of(
            exclude_songs=body.exclude_songs,
            exclude_artists=body.exclude_artists,
            genre=body.genre,
        ),
        max_per_artist=body.max_per_artist,
    )


@router.get("/{playlist_id}/continuation", response_model=PlaylistSuggestions, responses=_404)
async def get_continuation(
    playlist_id: PlaylistId,
    graph: GraphDep,
    models: ModelsDep,
    cache: CacheDep,
    rules: RulesDep,
    k: K = 10,
    max_per_artist: MaxPerArtist = None,
) -> PlaylistSuggestions:
    """Continuation of a playlist that is in the graph, within the rules and
    ``max_per_artist``."""
    return await suggestions.playlist_continuation(
        graph=graph, models=models, cache=cache, playlist_id=playlist_id, k=k, rules=rules,
        max_per_artist=max_per_artist,
    )  # fmt: skip
