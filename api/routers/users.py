"""A user's recommendations, their explanations and the listening profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import (
    CacheDep,
    GraphDep,
    ModelsDep,
    SongId,
    UserId,
)
from api.query import QueryModel
from api.schemas import (
    Explanation,
    Problem,
    Recommendations,
    RecommendationsQuery,
    UserProfile,
)
from api.services import catalog, recommendations
from api.services.rules import Rules

router = APIRouter(prefix="/users", tags=["users"])
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown user or song"}
}


#: The route's query parameters, validated in one call (``api.query``).
RECOMMENDATIONS_QUERY = QueryModel(RecommendationsQuery)


@router.get(
    "/{user_id}/recommendations",
    response_model=Recommendations,
    openapi_extra=RECOMMENDATIONS_QUERY.openapi,
)
async def get_recommendations(user_id: UserId, request: Request) -> Response:
    """Top-k songs: precomputed by the active run when fresh, scored live otherwise;
    popular songs (``cold_start``) for an unknown user or one without history. The rules
    (``genre``, ``exclude_songs``, ``exclude_artists``) and ``max_per_artist`` apply before
    the top k is cut. During an online comparison (``spotify-engine models online``) a user
    may be served the challenger run (``run_id`` says which), and the list is recorded as an
    exposure."""
    # The API's hottest path, served ahead of FastAPI's router (api.lean, api.app): no
    # dependency, no declared query parameter, the Response made here. The services come
    # from the app's state; the query is one model (RecommendationsQuery), validated in one
    # call.
    q = RECOMMENDATIONS_QUERY.parse(request)
    state = request.app.state
    rules = Rules.of(
        exclude_songs=q.exclude_songs, exclude_artists=q.exclude_artists, genre=q.genre
    )
    body = await recommendations.recommend(
        graph=state.graph, models=state.models, cache=state.cache, user_id=user_id, k=q.k,
        rules=rules, explain=q.explain, online=state.online, max_per_artist=q.max_per_artist,
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
