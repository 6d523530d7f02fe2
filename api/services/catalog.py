"""Songs, users and popularity: plain reads of the graph."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from api.schemas import ListeningStats, Ref, SimilarSongs, Song, SongScore, UserProfile, WeightedRef
from api.services.cache import TTLCache
from api.services.graph import Graph
from api.services.rules import Rules, cap_per_artist
from spotify_engine.errors import NotFound


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


async def get_song(*, graph: Graph, song_id: str) -> Song:
    r = await graph.read_one("api/get_song", song_id=song_id)
    if r is None:
        raise NotFound(f"unknown song {song_id!r}")
    return Song(
        song_id=r["song_id"],
        name=r["name"],
        duration_ms=r["duration_ms"],
        popularity=r["popularity"],
        artist=Ref(id=r["artist_id"], name=r["artist"]) if r["artist_id"] else None,
        album=Ref(id=r["album_id"], name=r["album"]) if r["album_id"] else None,
        genres=[WeightedRef(**g) for g in r["genres"]],
        plays=r["plays"],
        listeners=r["listeners"],
    )


async def known_songs(
    *,
    graph: Graph,
    song_ids: Sequence[str],
    cache: TTLCache | None = None,
    fallback: Callable[[str], tuple[str | None, str | None] | None] | None = None,
) -> dict[str, tuple[str | None, str | None]]:
    """``{song_id: (name, artist)}`` for the ids that exist; with ``cache``, only the songs it
    does not hold are read (the cache is cleared whenever the API writes).

    ``fallback`` (with a cache): names known without a read, e.g. a model snapshot's (the graph
    when the run was trained). A song the cache lacks is then answered from it and read from the
    graph in the background, so one answer can carry a name the graph has changed since, never
    two: the next request has the graph's.
    """
    if not song_ids:
        return {}
    ids = list(dict.fromkeys(song_ids))
    out: dict[str, tuple[str | None, str | None]] = {}
    if cache is not None and cache.ttl_s > 0:
        stale: list[Any] = []
        for sid in ids:
            hit, old = cache.peek(("song", sid))
            if hit is not None:
                out[sid] = hit
                if old:
                    stale.append(("song", sid))
        ids = [sid for sid in ids if sid not in out]
        if ids and fallback is not None:
            known = {sid: meta for sid in ids if (meta := fallback(sid)) is not None}
            out.update(known)
            stale.extend(("song", sid) for sid in known)
            ids = [sid for sid in ids if sid not in known]
        if stale:
            cache.refresh_many(stale, partial(_read_songs, graph), queue="songs")
    if ids:
        for r in await graph.read("api/find_songs", song_ids=ids):
            out[r["song_id"]] = (r["name"], r["artist"])
            if cache is not None:
                cache.put(("song", r["song_id"]), out[r["song_id"]])
    return out


async def _read_songs(graph: Graph, keys: list[Any]) -> dict[Any, tuple[str | None, str | None]]:
    """``{("song", id): (name, artist)}`` for the cache keys of songs that exist."""
    rows = await graph.read("api/find_songs", song_ids=[sid for _, sid in keys])
    return {("song", r["song_id"]): (r["name"], r["artist"]) for r in rows}


async def require_songs(
    *, graph: Graph, song_ids: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    found = await known_songs(graph=graph, song_ids=song_ids)
    missing = [s for s in dict.fromkeys(song_ids) if s not in found]
    if missing:
        shown = ", ".join(repr(s) for s in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise NotFound(f"unknown song{'s' if len(missing) > 1 else ''} {shown}{more}")
    return found


async def require_user(*, graph: Graph, user_id: str) -> int:
    """The number of distinct songs the user played; NotFound for an unknown user."""
    r = await graph.read_one("api/get_user", user_id=user_id)
    if r is None or not r["found"]:
        raise NotFound(f"unknown user {user_id!r}")
    return int(r["songs"])


async def allowed_songs(
    *, graph: Graph, song_ids: Sequence[str], rules: Rules
) -> dict[str, tuple[str | None, str | None]]:
    """``{song_id: (name, artist)}`` for the ids that exist and pass ``rules``."""
    if not song_ids:
        return {}
    if not rules.any:
        return await known_songs(graph=graph, song_ids=song_ids)
    rows = await graph.read(
        "api/allowed_songs", song_ids=list(dict.fromkeys(song_ids)), **rules.params()
    )
    return {r["song_id"]: (r["name"], r["artist"]) for r in rows}


async def scored(
    *,
    graph: Graph,
    pairs: Sequence[tuple[str, float]],
    k: int,
    rules: Rules = Rules(),
    max_per_artist: int | None = None,
) -> list[SongScore]:
    """Ranked items with names for ``(song_id, score)`` pairs: unknown ids and songs the rules
    leave out are dropped, and a song whose artist already has ``max_per_artist`` songs in the
    list is skipped, before the list is cut to ``k``."""
    pairs = list(pairs)
    meta = await allowed_songs(graph=graph, song_ids=[s for s, _ in pairs], rules=rules)
    kept = cap_per_artist(
        [(sid, score, *meta[sid]) for sid, score in pairs if sid in meta],
        lambda x: x[3],
        max_per_artist,
        k,
    )
    return [
        SongScore(rank=n + 1, song_id=sid, name=name, artist=artist, score=float(score))
        for n, (sid, score, name, artist) in enumerate(kept)
    ]


async def similar_songs(
    *,
    graph: Graph,
    cache: TTLCache,
    song_id: str,
    k: int,
    run_id: str | None,
    rules: Rules,
    max_per_artist: int | None = None,
) -> SimilarSongs:
    """The stored ``SIMILAR_TO`` neighbours within the rules; with ``max_per_artist``, cut
    from all of them in rank order (so fewer than ``k`` when the stored ones run out)."""
    key = ("similar", song_id, k, run_id, rules, max_per_artist)
    hit = cache.get(key)
    if hit is not None:
        return hit
    await require_songs(graph=graph, song_ids=[song_id])
    read_k = k if max_per_artist is None else max(10 * k, 100)
    rows = await graph.read("api/similar_songs", song_id=song_id, k=read_k, **rules.params())
    rows = cap_per_artist(rows, lambda r: r["artist"], max_per_artist, k)
    out = SimilarSongs(
        song_id=song_id,
        run_id=rows[0]["run_id"] if rows else None,
        items=[
            SongScore(
                rank=n + 1,
                song_id=r["song_id"],
                name=r["song"],
                artist=r["artist"],
                score=r["score"],
            )
            for n, r in enumerate(rows)
        ],
    )
    cache.put(key, out)
    return out


async def popular(
    *,
    graph: Graph,
    cache: TTLCache,
    k: int,
    rules: Rules = Rules(),
    exclude: Iterable[str] = (),
) -> list[SongScore]:
    """The most played songs within ``rules``, ``exclude`` (e.g. the seeds) left out too."""
    genres = [rules.genre] if rules.genre else []
    wanted = sorted({*genres, *(g.lower() for g in genres)})
    params = rules.params(exclude)
    key = ("popular", tuple(wanted), k, tuple(params["exclude_songs"]), rules.exclude_artists)
    rows = cache.get(key)
    if rows is None:
        rows = [
            (r["song_id"], r["name"], r["artist"], float(r["score"]))
            for r in await graph.read(
                "api/popular_songs",
                genres=wanted,
                k=k,
                exclude_songs=params["exclude_songs"],
                exclude_artists=params["exclude_artists"],
            )
        ]
        cache.put(key, rows)
    return [
        SongScore(rank=n + 1, song_id=sid, name=name, artist=artist, score=score)
        for n, (sid, name, artist, score) in enumerate(rows)
    ]


async def user_profile(*, graph: Graph, user_id: str, top: int) -> UserProfile:
    r = await graph.read_one("api/user_profile", user_id=user_id, top=top)
    if r is None:
        raise NotFound(f"unknown user {user_id!r}")
    return UserProfile(
        user_id=r["user_id"],
        name=r["name"],
        stats=ListeningStats(
            plays=r["plays"] or 0,
            songs=r["songs"] or 0,
            sessions=r["sessions"] or 0,
            ms_played=r["ms_played"],
            skips=r["skips"] or 0,
            first_at=_dt(r["first_at"]),
            last_at=_dt(r["last_at"]),
        ),
        top_genres=[WeightedRef(**g) for g in r["genres"]],
        top_artists=[WeightedRef(**a) for a in r["artists"]],
    )
