"""Next song for a listening session and playlist continuation.

The trained task model answers when one is active and loaded (called in a worker thread);
otherwise the graph does: ``FOLLOWED_BY`` transition counts out of the recent songs (latest
weighing most) or ``CONTAINS`` co-occurrence with the seed songs, topped up with popular
songs. The response names what answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import anyio

from api.schemas import PlaylistSuggestions, SongScore, Suggestions
from api.services.cache import TTLCache
from api.services.catalog import popular, require_songs, require_user, scored
from api.services.graph import Graph
from api.services.models import ModelService
from spotify_engine.errors import NotFound

FALLBACK_NEXT = "graph-transitions"
FALLBACK_PLAYLIST = "graph-cooccurrence"


async def _top_up(
    *, graph: Graph, cache: TTLCache, items: list[SongScore], k: int, exclude: Sequence[str]
) -> list[SongScore]:
    """Fill up to ``k`` with popular songs, scored below every item already there."""
    if len(items) >= k:
        return items
    seen = {*exclude, *(i.song_id for i in items)}
    extra = await popular(graph=graph, cache=cache, k=k - len(items), exclude=sorted(seen))
    floor = min([0.0, *(i.score for i in items)])
    for s in extra:
        items.append(s.model_copy(update={"rank": len(items) + 1, "score": floor - s.rank}))
    return items


async def next_songs(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    recent_song_ids: Sequence[str],
    user_id: str | None,
    at: datetime | None,
    k: int,
) -> Suggestions:
    key = ("next", tuple(recent_song_ids), user_id, at, k, models.active["session"])
    hit = cache.get(key)
    if hit is None:
        hit = await _next_songs(
            graph=graph,
            models=models,
            cache=cache,
            recent_song_ids=recent_song_ids,
            user_id=user_id,
            at=at,
            k=k,
        )
        cache.put(key, hit)
    return hit


async def _next_songs(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    recent_song_ids: Sequence[str],
    user_id: str | None,
    at: datetime | None,
    k: int,
) -> Suggestions:
    if user_id is not None:
        await require_user(graph=graph, user_id=user_id)
    await require_songs(graph=graph, song_ids=recent_song_ids)
    recent = list(recent_song_ids)
    predictor = models.predictors.get("session")
    if predictor is not None:
        at_ms = None if at is None else int(at.timestamp() * 1000)
        pairs = await anyio.to_thread.run_sync(
            lambda: predictor.predict_next(
                recent_song_ids=recent, user_id=user_id, at_ms=at_ms, k=k
            )
        )
        items = await scored(graph=graph, pairs=[p for p in pairs if p[0] not in recent], k=k)
        return Suggestions(
            model=predictor.name,
            run_id=predictor.run_id,
            fallback=False,
            cold_start=False,
            items=items,
        )
    rows = await graph.read("api/next_by_transitions", song_ids=recent, k=k)
    items = await scored(graph=graph, pairs=[(r["song_id"], r["score"]) for r in rows], k=k)
    had = len(items)
    items = await _top_up(graph=graph, cache=cache, items=items, k=k, exclude=recent)
    return Suggestions(
        model=FALLBACK_NEXT, run_id=None, fallback=True, cold_start=had == 0, items=items
    )


async def continue_playlist(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    song_ids: Sequence[str],
    name: str | None,
    k: int,
    playlist_id: str | None = None,
) -> PlaylistSuggestions:
    seeds = list(dict.fromkeys(song_ids))
    if seeds:
        await require_songs(graph=graph, song_ids=seeds)
    predictor = models.predictors.get("playlist")
    if predictor is not None:
        pairs = await anyio.to_thread.run_sync(
            lambda: predictor.continue_playlist(song_ids=seeds, name=name, k=k)
        )
        items = await scored(graph=graph, pairs=[p for p in pairs if p[0] not in seeds], k=k)
        return PlaylistSuggestions(
            model=predictor.name,
            run_id=predictor.run_id,
            fallback=False,
            cold_start=not seeds,
            items=items,
            playlist_id=playlist_id,
            name=name,
        )
    rows = await graph.read("api/playlist_cooccurrence", song_ids=seeds, k=k) if seeds else []
    items = await scored(graph=graph, pairs=[(r["song_id"], r["score"]) for r in rows], k=k)
    had = len(items)
    items = await _top_up(graph=graph, cache=cache, items=items, k=k, exclude=seeds)
    return PlaylistSuggestions(
        model=FALLBACK_PLAYLIST,
        run_id=None,
        fallback=True,
        cold_start=had == 0,
        items=items,
        playlist_id=playlist_id,
        name=name,
    )


async def playlist_continuation(
    *, graph: Graph, models: ModelService, cache: TTLCache, playlist_id: str, k: int
) -> PlaylistSuggestions:
    r = await graph.read_one("api/playlist_songs", playlist_id=playlist_id)
    if r is None or not r["found"]:
        raise NotFound(f"unknown playlist {playlist_id!r}")
    return await continue_playlist(
        graph=graph,
        models=models,
        cache=cache,
        song_ids=r["song_ids"],
        name=r["name"],
        k=k,
        playlist_id=playlist_id,
    )
