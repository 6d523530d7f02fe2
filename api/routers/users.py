"""A user's recommendations, their explanations and the listening profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.deps import CacheDep, GraphDep, K, ModelsDep, OnlineDep, RulesDep, SongId, UserId
from api.schemas import Explanation, Problem, Recommendations, UserProfile
from api.services import catalog, recommendations

router = APIRouter(prefix="/users", tags=["users"])
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown user or song"}
}


@router.get("/{user_id}/recommendations", response_model=Recommendations)
async def get_recommendations(
    user_id: UserId,
    graph: GraphDep,
    models: ModelsDep,
    cache: CacheDep,
    rules: RulesDep,
    online: OnlineDep,
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
) -> Response:
    """Top-k songs: precomputed by the active run when fresh, scored live otherwise;
    popular songs (``cold_start``) for an unknown user or one without history. The rules
    (``genre``, ``exclude_songs``, ``exclude_artists``) and ``max_per_artist`` apply before
    the top k is cut. During an online comparison (``spotify-engine models online``) a user
    may be served the challenger run (``run_id`` says which), and the list is recorded as an
    exposure."""
    body = await recommendations.recommend(
        graph=graph, models=models, cache=cache, user_id=user_id, k=k, rules=rules,
        explain=explain, online=online, max_per_artist=max_per_artist,
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
