"""Next song for a listening session and playlist continuation.

The trained task model answers when one is active and loaded (called in a worker thread);
otherwise the graph does: ``FOLLOWED_BY`` transition counts out of the recent songs (latest
weighing most) or ``CONTAINS`` co-occurrence with the seed songs, topped up with popular
songs. The response names what answered.

Input songs the graph does not know are left out and listed (``ignored``); only when nothing
usable is left is the request a 404. Rules (:class:`~api.services.rules.Rules`) are applied
before the cut: in the fallbacks' Cypher, and for a model by asking it for more candidates
until ``k`` pass (or it has no more).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import anyio

from api.schemas import PlaylistSuggestions, SongScore, Suggestions
from api.services.cache import TTLCache
from api.services.catalog import known_songs, popular, require_user, scored
from api.services.graph import Graph
from api.services.models import ModelService
from api.services.rules import Rules, cap_per_artist
from spotify_engine.errors import NotFound

FALLBACK_NEXT = "graph-transitions"
FALLBACK_PLAYLIST = "graph-cooccurrence"
#: The most candidates asked of a task model while looking for ``k`` that pass the rules.
MAX_CANDIDATES = 5000
#: Popular songs read to top a capped list up (``max_per_artist``).
POPULAR_CANDIDATES = 1000


def _read_k(k: int, max_per_artist: int | None) -> int:
    """How many rows a fallback statement reads for ``k`` items: more under a cap."""
    return k if max_per_artist is None else max(10 * k, 100)


async def _top_up(
    *,
    graph: Graph,
    cache: TTLCache,
    items: list[SongScore],
    k: int,
    exclude: Sequence[str],
    rules: Rules,
    max_per_artist: int | None = None,
) -> list[SongScore]:
    """Fill up to ``k`` with popular songs within ``rules`` (and ``max_per_artist``, counting
    the items already there), scored below every item there."""
    if len(items) >= k:
        return items
    seen = {*exclude, *(i.song_id for i in items)}
    want = k - len(items) if max_per_artist is None else POPULAR_CANDIDATES
    extra = await popular(graph=graph, cache=cache, k=want, rules=rules, exclude=seen)
    floor = min([0.0, *(i.score for i in items)])
    more = [s.model_copy(update={"score": floor - s.rank}) for s in extra]
    # the items already there obey the cap, so they all stay, ahead of the popular ones
    out = cap_per_artist([*items, *more], lambda s: s.artist, max_per_artist, k)
    return [s.model_copy(update={"rank": n + 1}) for n, s in enumerate(out)]


async def _usable(*, graph: Graph, song_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(known, ignored)``: the input songs the graph has (order and repeats kept) and the
    distinct ones it lacks."""
    found = await known_songs(graph=graph, song_ids=song_ids)
    return [s for s in song_ids if s in found], [
        s for s in dict.fromkeys(song_ids) if s not in found
    ]


def _none_known(ignored: Sequence[str]) -> NotFound:
    shown = ", ".join(repr(s) for s in ignored[:10])
    more = f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
    return NotFound(
        f"unknown song{'s' if len(ignored) > 1 else ''} {shown}{more}: none of the input songs "
        "is in the graph",
        hint="unknown songs are ignored as long as one input song is known",
    )


async def _model_items(
    *,
    graph: Graph,
    rank: Callable[[int], list[tuple[str, float]]],
    k: int,
    rules: Rules,
    exclude: Sequence[str],
    max_per_artist: int | None = None,
) -> list[SongScore]:
    """The model's top ``k`` within ``rules`` and ``max_per_artist``: more candidates are
    asked for (x4 each time) while too few pass and the model has more to give."""
    want = k
    if rules.any or max_per_artist is not None:
        more = max(4 * k + len(rules.exclude_songs), _read_k(k, max_per_artist))
        want = min(MAX_CANDIDATES, more)
    skip = set(exclude)
    while True:
        pairs = await anyio.to_thread.run_sync(rank, want)
        items = await scored(
            graph=graph,
            pairs=[p for p in pairs if p[0] not in skip],
            k=k,
            rules=rules,
            max_per_artist=max_per_artist,
        )
        if len(items) >= k or len(pairs) < want or want >= MAX_CANDIDATES:
            return items
        want = min(MAX_CANDIDATES, 4 * want)


async def next_songs(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    recent_song_ids: Sequence[str],
    user_id: str | None,
    at: datetime | None,
    k: int,
    rules: Rules = Rules(),
    max_per_artist: int | None = None,
) -> Suggestions:
    key = (
        "next", tuple(recent_song_ids), user_id, at, k, rules, max_per_artist,
        models.active["session"],
    )  # fmt: skip
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
            rules=rules,
            max_per_artist=max_per_artist,
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
    rules: Rules,
    max_per_artist: int | None = None,
) -> Suggestions:
    if user_id is not None:
        await require_user(graph=graph, user_id=user_id)
    recent, ignored = await _usable(graph=graph, song_ids=recent_song_ids)
    if not recent:
        raise _none_known(ignored)
    predictor = models.predictors.get("session")
    if predictor is not None:
        at_ms = None if at is None else int(at.timestamp() * 1000)
        items = await _model_items(
            graph=graph,
            rank=lambda n: predictor.predict_next(
                recent_song_ids=recent, user_id=user_id, at_ms=at_ms, k=n
            ),
            k=k,
            rules=rules,
            exclude=recent,
            max_per_artist=max_per_artist,
        )
        return Suggestions(
            model=predictor.name,
            run_id=predictor.run_id,
            fallback=False,
            cold_start=False,
            ignored=ignored,
            items=items,
        )
    rows = await graph.read(
        "api/next_by_transitions",
        song_ids=recent,
        k=_read_k(k, max_per_artist),
        **rules.params(),
    )
    items = await scored(
        graph=graph,
        pairs=[(r["song_id"], r["score"]) for r in rows],
        k=k,
        max_per_artist=max_per_artist,
    )
    had = len(items)
    items = await _top_up(
        graph=graph, cache=cache, items=items, k=k, exclude=recent, rules=rules,
        max_per_artist=max_per_artist,
    )  # fmt: skip
    return Suggestions(
        model=FALLBACK_NEXT,
        run_id=None,
        fallback=True,
        cold_start=had == 0,
        ignored=ignored,
        items=items,
    )


async def continue_playlist(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    song_ids: Sequence[str],
    name: str | None,
    k: int,
    rules: Rules = Rules(),
    playlist_id: str | None = None,
    max_per_artist: int | None = None,
) -> PlaylistSuggestions:
    key = (
        "continue", tuple(song_ids), name, k, rules, playlist_id, max_per_artist,
        models.active["playlist"],
    )  # fmt: skip
    hit = cache.get(key)
    if hit is None:
        hit = await _continue_playlist(
            graph=graph,
            models=models,
            cache=cache,
            song_ids=song_ids,
            name=name,
            k=k,
            rules=rules,
            playlist_id=playlist_id,
            max_per_artist=max_per_artist,
        )
        cache.put(key, hit)
    return hit


async def _continue_playlist(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    song_ids: Sequence[str],
    name: str | None,
    k: int,
    rules: Rules,
    playlist_id: str | None,
    max_per_artist: int | None = None,
) -> PlaylistSuggestions:
    seeds, ignored = await _usable(graph=graph, song_ids=list(dict.fromkeys(song_ids)))
    if ignored and not seeds and not (name or "").strip():
        raise _none_known(ignored)
    predictor = models.predictors.get("playlist")
    if predictor is not None:
        items = await _model_items(
            graph=graph,
            rank=lambda n: predictor.continue_playlist(song_ids=seeds, name=name, k=n),
            k=k,
            rules=rules,
            exclude=seeds,
            max_per_artist=max_per_artist,
        )
        return PlaylistSuggestions(
            model=predictor.name,
            run_id=predictor.run_id,
            fallback=False,
            cold_start=not seeds,
            ignored=ignored,
            items=items,
            playlist_id=playlist_id,
            name=name,
        )
    rows = (
        await graph.read(
            "api/playlist_cooccurrence",
            song_ids=seeds,
            k=_read_k(k, max_per_artist),
            **rules.params(),
        )
        if seeds
        else []
    )
    items = await scored(
        graph=graph,
        pairs=[(r["song_id"], r["score"]) for r in rows],
        k=k,
        max_per_artist=max_per_artist,
    )
    had = len(items)
    items = await _top_up(
        graph=graph, cache=cache, items=items, k=k, exclude=seeds, rules=rules,
        max_per_artist=max_per_artist,
    )  # fmt: skip
    return PlaylistSuggestions(
        model=FALLBACK_PLAYLIST,
        run_id=None,
        fallback=True,
        cold_start=had == 0,
        ignored=ignored,
        items=items,
        playlist_id=playlist_id,
        name=name,
    )


async def playlist_continuation(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    playlist_id: str,
    k: int,
    rules: Rules = Rules(),
    max_per_artist: int | None = None,
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
        rules=rules,
        playlist_id=playlist_id,
        max_per_artist=max_per_artist,
    )
