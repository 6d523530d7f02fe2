"""Next-song suggestions for a listening session."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CacheDep, GraphDep, ModelsDep
from api.schemas import NextSongRequest, Problem, Suggestions
from api.services import suggestions
from api.services.rules import Rules

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.post(
    "/next",
    response_model=Suggestions,
    responses={404: {"model": Problem, "description": "unknown user or song"}},
)
async def post_next(
    body: NextSongRequest, graph: GraphDep, models: ModelsDep, cache: CacheDep
) -> Suggestions:
    """What to play next after ``recent_song_ids`` (oldest first); unknown songs are ignored
    (and listed), the rules apply before the top k is cut."""
    return await suggestions.next_songs(
        graph=graph,
        models=models,
        cache=cache,
        recent_song_ids=body.recent_song_ids,
        user_id=body.user_id,
        at=body.at,
        k=body.k,
        rules=Rules.of(
            exclude_songs=body.exclude_songs,
            exclude_artists=body.exclude_artists,
            genre=body.genre,
        ),
        max_per_artist=body.max_per_artist,
    )
