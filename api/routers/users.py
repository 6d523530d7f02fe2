"""A user's recommendations, their explanations and the listening profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import (
    CacheDep,
    ExcludeArtists,
    ExcludeSongs,
    Genre,
    GraphDep,
    K,
    ModelsDep,
    SongId,
    UserId,
)
from api.schemas import Explanation, Problem, Recommendations, UserProfile
from api.services import catalog, recommendations
from api.services.rules import Rules

router = APIRouter(prefix="/users", tags=["users"])
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown user or song"}
}


@router.get("/{user_id}/recommendations", response_model=Recommendations)
async def get_recommendations(
    user_id: UserId,
    request: Request,
    k: K = 10,
    explain: Annotated[bool, Query(description="include reasons and weighted evidence")] = True,
    max_per_artist: Annotated[
        int | None,
        Query(
            ge=0,
            le=100,
            description="at most this many songs of one artist; 0: no cap; not given: the "
            "serving run's cap (chosen on validation, see max_per_artist in the answer)",
        ),
    ] = None,
    exclude_songs: ExcludeSongs = [],  # noqa: B006 - FastAPI copies query defaults
    exclude_artists: ExcludeArtists = [],  # noqa: B006
    genre: Genre = None,
) -> Response:
    """Top-k songs: precomputed by the active run when fresh, scored live otherwise;
    popular songs (``cold_start``) for an unknown user or one without history. The rules
    (``genre``, ``exclude_songs``, ``exclude_artists``) and ``max_per_artist`` apply before
    the top k is cut. During an online comparison (``spotify-engine models online``) a user
    may be served the challenger run (``run_id`` says which), and the list is recorded as an
    exposure."""
    # No dependency here (the services come from the app's state, the rules' parameters are
    # the route's own): FastAPI resolves each dependency anew per request, and on this, the
    # API's hottest path, the six it had cost as much as the recommendation itself.
    state = request.app.state
    rules = Rules.of(exclude_songs=exclude_songs, exclude_artists=exclude_artists, genre=genre)
    body = await recommendations.recommend(
        graph=state.graph, models=state.models, cache=state.cache, user_id=user_id, k=k,
        rules=rules, explain=explain, online=state.online, max_per_artist=max_per_artist,
    )  # fmt: skip
    return Response(body, media_type="application/json")


@router.get(
    "/{user_id}/recommendations/{song_id}/explanation",
    response_model=Explanation,
    responses=_404,
)
async def get_explanation(
    user_id: UserId, song_id: SongId, graph: GraphDep, models: ModelsDep, cache: CacheDep
) -> Explanation:
    """The weighted evidence behind one recommendation and its sentence."""
    return await recommendations.explanation(
        graph=graph, models=models, cache=cache, user_id=user_id, song_id=song_id
    )


@router.get("/{user_id}/profile", response_model=UserProfile, responses=_404)
async def get_profile(
    user_id: UserId,
    graph: GraphDep,
    top: Annotated[int, Query(ge=1, le=50, description="genres and artists listed")] = 5,
) -> UserProfile:
    """Listening stats, top genres and top artists."""
    return await catalog.user_profile(graph=graph, user_id=user_id, top=top)
