"""Songs and their neighbours."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CacheDep, GraphDep, K, MaxPerArtist, ModelsDep, RulesDep, SongId
from api.schemas import Problem, SimilarSongs, Song
from api.services import catalog

router = APIRouter(prefix="/songs", tags=["songs"])
_404: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "unknown song"}}


@router.get("/{song_id}", response_model=Song, responses=_404)
async def get_song(song_id: SongId, graph: GraphDep) -> Song:
    return await catalog.get_song(graph=graph, song_id=song_id)


@router.get("/{song_id}/similar", response_model=SimilarSongs, responses=_404)
async def get_similar(
    song_id: SongId,
    graph: GraphDep,
    models: ModelsDep,
    cache: CacheDep,
    rules: RulesDep,
    k: K = 10,
    max_per_artist: MaxPerArtist = None,
) -> SimilarSongs:
    """Nearest songs in the active run's learned embeddings (``SIMILAR_TO``), within the
    rules and ``max_per_artist`` (cut from the stored neighbours)."""
    return await catalog.similar_songs(
        graph=graph, cache=cache, song_id=song_id, k=k, run_id=models.active["user"],
        rules=rules, max_per_artist=max_per_artist,
    )  # fmt: skip
