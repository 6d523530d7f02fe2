"""Recommendations for a user and their explanations: precomputed when fresh, live otherwise.

"Fresh" means written back by the active user run (``Recommendation.run_id`` equals it).
Otherwise the active run scores the user now, in a worker thread, with the same explainer
that wrote the precomputed evidence. Unknown users and users without history get popular
songs, flagged ``cold_start``. The rules (genre, excluded songs and artists) are applied before
the cut on every path: in the Cypher ``WHERE``, or as the live scorer's candidate mask; when
the precomputed rows left after the rules are fewer than ``k``, the live model answers.
"""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np

from api.schemas import Evidence, Explanation, RecommendationItem, Recommendations
from api.services.cache import TTLCache
from api.services.catalog import known_songs, popular, require_songs, require_user
from api.services.graph import Graph
from api.services.models import LiveModel, ModelService
from api.services.rules import Rules
from spotify_engine.errors import NotFound

_LABEL_TYPE = {
    "Song": "song",
    "Artist": "artist",
    "Genre": "genre",
    "User": "user",
    "Playlist": "playlist",
}


def _evidence(rows: list[dict[str, Any]]) -> list[Evidence]:
    return [
        Evidence(
            kind=e["kind"], weight=e["weight"], label=e["label"], id=e["id"], name=e.get("name")
        )
        for e in rows
    ]


async def recommend(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    user_id: str,
    k: int,
    rules: Rules,
    explain: bool,
) -> bytes:
    """The recommendations as JSON bytes (a :class:`Recommendations`), cached rendered: the
    hot path of the API skips validation and serialisation on a cache hit."""
    active = models.active["user"]
    key = ("recs", user_id, k, rules, explain, active)
    hit = cache.get(key)
    if hit is not None:
        return hit
    out = await _recommend(
        graph=graph, models=models, cache=cache, user_id=user_id, k=k, rules=rules, explain=explain
    )
    body = out.model_dump_json().encode()
    cache.put(key, body)
    return body


async def _recommend(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    user_id: str,
    k: int,
    rules: Rules,
    explain: bool,
) -> Recommendations:
    active = models.active["user"]
    live = models.live
    genre = rules.genre
    row = await graph.read_one("api/user_recommendations", user_id=user_id, k=k, **rules.params())
    if row is not None and row["items"]:
        items = row["items"]
        fresh = active is not None and all(r["run_id"] == active for r in items)
        can_live = live is not None and user_id in live.user_index
        if (fresh and len(items) >= k) or not can_live:
            return Recommendations(
                user_id=user_id,
                source="precomputed",
                cold_start=False,
                model=items[0]["model"],
                run_id=items[0]["run_id"],
                genre=genre,
                explained=explain,
                items=[
                    RecommendationItem(
                        rank=n + 1,
                        song_id=r["song_id"],
                        name=r["name"],
                        artist=r["artist"],
                        score=r["score"],
                        reason=r["reason"] if explain else None,
                        evidence=_evidence(r["evidence"]) if explain else None,
                    )
                    for n, r in enumerate(items)
                ],
            )
    history = 0 if row is None else await require_user(graph=graph, user_id=user_id)
    if history and live is not None and user_id in live.user_index:
        explained = explain and models.live_explain and live.explainable
        items = await anyio.to_thread.run_sync(
            _live_items, live, live.user_index[user_id], k, rules, explained
        )
        meta = await known_songs(graph=graph, song_ids=[i.song_id for i in items])
        for item in items:
            item.name, item.artist = meta.get(item.song_id, (None, None))
        return Recommendations(
            user_id=user_id,
            source="live",
            cold_start=False,
            model=live.name,
            run_id=live.run_id,
            genre=genre,
            explained=explained,
            items=items,
        )
    songs = await popular(graph=graph, cache=cache, k=k, rules=rules)
    return Recommendations(
        user_id=user_id,
        source="popular",
        cold_start=history == 0,
        genre=genre,
        explained=False,
        items=[RecommendationItem(**s.model_dump()) for s in songs],
    )


def _live_items(
    live: LiveModel, u: int, k: int, rules: Rules, explain: bool
) -> list[RecommendationItem]:
    from gnn.explain import GradientExplainer
    from gnn.users import Explained, writeback_rows

    users = np.array([u])
    with live.lock:
        mask = rules.song_mask(live.snap)
        kk = min(k, live.snap.num_songs)
        ids, scores = live.rec.recommend(users, kk, live.full, candidates_mask=mask)
        keep = (ids[0] >= 0) & np.isfinite(scores[0])
        ids, scores = ids[:, keep], scores[:, keep]
        if ids.shape[1] == 0:
            return []
        if not (explain and live.explainable):
            return [
                RecommendationItem(rank=r + 1, song_id=str(live.snap.song_ids[i]), score=float(s))
                for r, (i, s) in enumerate(zip(ids[0].tolist(), scores[0].tolist(), strict=True))
            ]
        expl = GradientExplainer(live.rec.model, live.full.hetero).explain(users, ids, top=5)
    rows, _ = writeback_rows(
        live.snap, Explained(users=users, songs=ids, scores=scores, explanations=expl)
    )
    names = _names(live)
    return [
        RecommendationItem(
            rank=row.rank,
            song_id=row.song_id,
            score=row.score,
            reason=row.reason,
            evidence=_row_evidence(row, names),
        )
        for row in rows
    ]


def _row_evidence(row: Any, names: dict[tuple[str, str], str]) -> list[Evidence]:
    """A write-back row's evidence as response items, with node names."""
    return [
        Evidence(
            kind=e.kind, weight=e.weight, label=e.label, id=e.id, name=names.get((e.label, e.id))
        )
        for e in row.evidence
    ]


def _names(live: LiveModel) -> dict[tuple[str, str], str]:
    cached = getattr(live, "_evidence_names", None)
    if cached is None:
        from gnn.users import display_names as snapshot_names

        arrays = snapshot_names(live.snap)
        ids = {
            "song": live.snap.song_ids,
            "artist": live.snap.artist_ids,
            "genre": live.snap.genre_ids,
            "user": live.snap.user_ids,
            "playlist": live.snap.playlist_ids,
        }
        cached = {
            (label, str(i)): str(n)
            for label, t in _LABEL_TYPE.items()
            for i, n in zip(ids[t], arrays[t], strict=True)
            if n
        }
        live._evidence_names = cached  # type: ignore[attr-defined]
    return cached


async def explanation(
    *, graph: Graph, models: ModelService, cache: TTLCache, user_id: str, song_id: str
) -> Explanation:
    key = ("explanation", user_id, song_id, models.active["user"])
    hit = cache.get(key)
    if hit is None:
        hit = await _explanation(graph=graph, models=models, user_id=user_id, song_id=song_id)
        cache.put(key, hit)
    return hit


async def _explanation(
    *, graph: Graph, models: ModelService, user_id: str, song_id: str
) -> Explanation:
    live = models.live
    can_live = (
        live is not None
        and models.live_explain
        and live.explainable
        and user_id in live.user_index
        and song_id in live.song_index
    )
    r = await graph.read_one("explain/why_recommended", user_id=user_id, song_id=song_id)
    if r is not None and (r["run_id"] == models.active["user"] or not can_live):
        return Explanation(
            user_id=user_id,
            song_id=song_id,
            song=r["song"],
            source="precomputed",
            rank=r["rank"],
            score=r["score"],
            model=r["model"],
            run_id=r["run_id"],
            sentence=r["reason"] or "",
            evidence=_evidence(r["evidence"]),
        )
    await require_user(graph=graph, user_id=user_id)
    meta = await require_songs(graph=graph, song_ids=[song_id])
    if not can_live:
        raise NotFound(
            f"song {song_id!r} is not among user {user_id!r}'s recommendations, and no live "
            "model explains it",
            hint="write back the active run (spotify-engine train), or allow live explanations "
            "with SPOTIFY_ENGINE_API_LIVE_EXPLAIN=true (slow on large graphs)",
        )
    assert live is not None
    out = await anyio.to_thread.run_sync(_live_explanation, live, user_id, song_id)
    out.song = meta[song_id][0]
    return out


def _live_explanation(live: LiveModel, user_id: str, song_id: str) -> Explanation:
    from gnn.explain import GradientExplainer
    from gnn.users import Explained, writeback_rows

    u, i = live.user_index[user_id], live.song_index[song_id]
    users = np.array([u])
    with live.lock:
        raw = np.array(live.rec.score(users, live.full), dtype=np.float32)[0]
        played = live.full.matrix[u].indices
        score = float(raw[i])
        masked = raw.copy()
        masked[played] = -np.inf
        rank = None if i in set(played.tolist()) else int((masked > score).sum()) + 1
        expl = GradientExplainer(live.rec.model, live.full.hetero).explain(
            users, np.array([[i]]), top=5
        )
    rows, _ = writeback_rows(
        live.snap,
        Explained(
            users=users, songs=np.array([[i]]), scores=np.array([[score]]), explanations=expl
        ),
    )
    names = _names(live)
    row = rows[0]
    return Explanation(
        user_id=user_id,
        song_id=song_id,
        source="live",
        rank=rank,
        score=score,
        model=live.name,
        run_id=live.run_id,
        sentence=row.reason or "",
        evidence=_row_evidence(row, names),
    )
