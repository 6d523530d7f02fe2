"""Recommendations for a user and their explanations: precomputed when fresh, live otherwise.

"Fresh" means written back by the active user run (``Recommendation.run_id`` equals it).
Otherwise the active run scores the user now, in a worker thread, with the same explainer
that wrote the precomputed evidence. Unknown users and users without history get popular
songs, flagged ``cold_start``. The rules (genre, excluded songs and artists) are applied before
the cut on every path: in the Cypher ``WHERE``, or as the live scorer's candidate mask; when
the precomputed rows left after the rules are fewer than ``k``, the live model answers.

``max_per_artist`` (issue 14 item 4) caps the songs of one artist in a list. It is applied
before the cut too: each path reads more candidates than ``k`` and keeps them in order while
their artist has room, so a request still returns ``k`` items when ``k`` such songs exist.
The precomputed and popular paths tell artists apart by name (what their rows carry), the live
path by the snapshot's artist of each song.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import numpy as np

from api.schemas import Evidence, Explanation, RecommendationItem, Recommendations
from api.services.cache import TTLCache
from api.services.catalog import known_songs, popular, require_songs, require_user
from api.services.graph import Graph
from api.services.models import LiveModel, ModelService
from api.services.online import OnlineService
from api.services.rules import Rules, cap_per_artist
from spotify_engine.errors import NotFound

#: Candidates read when ``max_per_artist`` is set: the most a statement may return at once.
_CAPPED_CANDIDATES = 1000


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
    online: OnlineService | None = None,
    max_per_artist: int | None = None,
) -> bytes:
    """The recommendations as JSON bytes (a :class:`Recommendations`), cached rendered: the
    hot path of the API skips validation and serialisation on a cache hit.

    During an online comparison (``online``), a user of the challenger's arm is served by the
    challenger, and every list a run of the comparison made is queued as an exposure.
    """
    active = models.active["user"]
    challenger = _challenger_for(online, user_id, active)
    run = active if challenger is None else challenger.run_id
    if max_per_artist == 0:  # asked for no cap
        max_per_artist = None
    elif max_per_artist is None:  # the serving run's own cap
        serving = challenger if challenger is not None else models.live
        if serving is not None and serving.run_id == run:
            max_per_artist = serving.max_per_artist
    key = ("recs", user_id, k, rules, explain, max_per_artist, run)
    hit = cache.get(key)
    if hit is not None:
        if online is not None and online.experiment is not None:
            seen = json.loads(hit)
            online.record(user_id, seen["run_id"], [i["song_id"] for i in seen["items"]])
        return hit
    out = None
    if challenger is not None:
        out = await _challenger_recommend(
            graph=graph, models=models, live=challenger, user_id=user_id, k=k, rules=rules,
            explain=explain, max_per_artist=max_per_artist,
        )  # fmt: skip
    if out is None:
        out = await _recommend(
            graph=graph, models=models, cache=cache, user_id=user_id, k=k, rules=rules,
            explain=explain, max_per_artist=max_per_artist,
        )  # fmt: skip
    out.max_per_artist = max_per_artist
    body = out.model_dump_json().encode()
    cache.put(key, body)
    if online is not None:
        online.record(user_id, out.run_id, [i.song_id for i in out.items])
    return body


def _challenger_for(online: OnlineService | None, user_id: str, active: str | None) -> Any:
    """The challenger's live model when this user is in its arm of a running comparison whose
    control is still the active run; else None (the usual path serves)."""
    if online is None or online.challenger is None:
        return None
    exp = online.experiment
    if exp is None or exp.control != active or exp.arm(user_id) != exp.challenger:
        return None
    return online.challenger


async def _challenger_recommend(
    *,
    graph: Graph,
    models: ModelService,
    live: LiveModel,
    user_id: str,
    k: int,
    rules: Rules,
    explain: bool,
    max_per_artist: int | None = None,
) -> Recommendations | None:
    """The challenger's list, scored live; None for a user it cannot score (not in its
    training data), who gets the usual path (and is no exposure of the comparison)."""
    u = live.user_index.get(user_id)
    if u is None or live.full.matrix[u].nnz == 0:  # no history: popular, as in the control
        return None
    return await _live_recommendations(
        graph=graph, models=models, live=live, user_id=user_id, k=k, rules=rules,
        explain=explain, max_per_artist=max_per_artist,
    )  # fmt: skip


async def _live_recommendations(
    *,
    graph: Graph,
    models: ModelService,
    live: LiveModel,
    user_id: str,
    k: int,
    rules: Rules,
    explain: bool,
    max_per_artist: int | None,
    cache: TTLCache | None = None,
) -> Recommendations:
    """``live`` scores a user of its training snapshot now (``source: live``), names added."""
    explained = explain and models.live_explain and live.explainable
    u = live.user_index[user_id]
    if explained:
        items = await anyio.to_thread.run_sync(_live_items, live, u, k, rules, True, max_per_artist)
        meta = await known_songs(
            graph=graph,
            song_ids=[i.song_id for i in items],
            cache=cache,
            fallback=_snapshot_names(live),
        )
        for item in items:
            item.name, item.artist = meta.get(item.song_id, (None, None))
    else:
        ids, scores = await _batcher(live).rank(u, k, rules, max_per_artist)
        names = _song_id_list(live)
        song_ids = [names[i] for i in ids.tolist()]
        meta = await known_songs(
            graph=graph, song_ids=song_ids, cache=cache, fallback=_snapshot_names(live)
        )
        unknown = (None, None)
        items = [
            RecommendationItem(
                rank=r + 1, song_id=sid, name=(m := meta.get(sid, unknown))[0], artist=m[1],
                score=s,
            )
            for r, (sid, s) in enumerate(zip(song_ids, scores.tolist(), strict=True))
        ]  # fmt: skip
    return Recommendations(
        user_id=user_id,
        source="live",
        cold_start=False,
        model=live.name,
        run_id=live.run_id,
        genre=rules.genre,
        explained=explained,
        items=items,
    )


async def _recommend(
    *,
    graph: Graph,
    models: ModelService,
    cache: TTLCache,
    user_id: str,
    k: int,
    rules: Rules,
    explain: bool,
    max_per_artist: int | None = None,
) -> Recommendations:
    active = models.active["user"]
    live = models.live
    genre = rules.genre
    read_k = k if max_per_artist is None else _CAPPED_CANDIDATES
    row = await _user_state(graph=graph, cache=cache, user_id=user_id, active=active)
    if row is not None and rules.any:
        allowed = [
            r
            for r in row["items"]
            if rules.allows(r["song_id"], r["artist_keys"], r["genre_ids"], r["genre_names"])
        ]
        row = {**row, "items": allowed}
    if row is not None and live is not None and live.foldable and row["sessions"]:
        trained = live.sessions.get(user_id)
        if trained is None or row["sessions"] > trained:  # plays the run has not seen
            folded = await _fold_in(
                graph=graph, live=live, user_id=user_id, k=k, rules=rules, explain=explain,
                max_per_artist=max_per_artist,
            )  # fmt: skip
            if folded is not None:
                return folded
    if row is not None and row["items"]:
        items = cap_per_artist(row["items"], lambda r: r["artist"], max_per_artist, k)
        fresh = active is not None and all(r["run_id"] == active for r in items)
        can_live = live is not None and user_id in live.user_index
        # rows stored under a tighter cap than asked are not that list: rank it live
        stored = live.max_per_artist if live is not None and live.run_id == active else None
        looser = stored is not None and (max_per_artist is None or max_per_artist > stored)
        if (fresh and len(items) >= k and not looser) or not can_live:
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
    history = 0 if row is None else int(row["songs"])
    if history and live is not None and user_id in live.user_index:
        return await _live_recommendations(
            graph=graph, models=models, live=live, user_id=user_id, k=k, rules=rules,
            explain=explain, max_per_artist=max_per_artist, cache=cache,
        )  # fmt: skip
    songs = cap_per_artist(
        await popular(graph=graph, cache=cache, k=read_k, rules=rules),
        lambda s: s.artist,
        max_per_artist,
        k,
    )
    for n, s in enumerate(songs):
        s.rank = n + 1
    return Recommendations(
        user_id=user_id,
        source="popular",
        cold_start=history == 0,
        genre=genre,
        explained=False,
        items=[RecommendationItem(**s.model_dump()) for s in songs],
    )


async def _user_state(
    *, graph: Graph, cache: TTLCache, user_id: str, active: str | None
) -> dict[str, Any] | None:
    """The user's precomputed rows (all, unfiltered), sessions and songs played; None: no such
    user. One read per user while the cache holds it (any API write clears it), whatever the
    rules of the request: they are applied to the rows here, not in the statement. An expired
    entry is answered while it is read again in the background, together with every other
    entry that expired meanwhile (one ``api/user_recommendations_many`` read)."""
    key = ("user_state", user_id, active)
    hit = cache.lookup(key, partial(_read_user_states, graph), queue="user_state")
    if hit is not None:
        return hit
    row = await graph.read_one("api/user_recommendations", user_id=user_id)
    cache.put(key, row)
    return row


async def _read_user_states(graph: Graph, keys: list[Any]) -> dict[Any, Any]:
    """``{("user_state", user, run): row}`` of :func:`_user_state` for the keys' users that
    exist, in one read."""
    rows = await graph.read("api/user_recommendations_many", user_ids=[key[1] for key in keys])
    by_user = {r["user_id"]: r for r in rows}
    return {key: by_user[key[1]] for key in keys if key[1] in by_user}


#: Users whose states one warm-up read fetches.
WARM_CHUNK = 500


async def warm(
    *, graph: Graph, models: ModelService, cache: TTLCache, max_users: int
) -> dict[str, Any]:
    """Fill the cache with the states of up to ``max_users`` users holding precomputed rows of
    the active run, and the live run's memo with their rankings (as far as its budget goes).

    Run at start, before the API serves: otherwise its first requests each wait for a Neo4j
    read and a ranking, all at once, and a load test's first seconds answered in up to 1.2 s
    what later ones answer in 40 ms (issue 14, item 7). Returns what it did."""
    active = models.active["user"]
    out: dict[str, Any] = {"users": 0, "ranked": 0, "seconds": 0.0}
    if active is None or cache.ttl_s <= 0 or max_users <= 0:
        return out
    t0 = time.perf_counter()
    listed = await graph.read("api/list_warm_users", run_id=active, limit=max_users)
    users = [r["user_id"] for r in listed]
    for i in range(0, len(users), WARM_CHUNK):
        keys = [("user_state", u, active) for u in users[i : i + WARM_CHUNK]]
        for key, row in (await _read_user_states(graph, keys)).items():
            cache.put(key, row, spread=True)
            out["users"] += 1
    live = models.live
    if live is not None and live.run_id == active:
        index = [live.user_index[u] for u in users if u in live.user_index]
        out["ranked"] = await anyio.to_thread.run_sync(_batcher(live).remember_many, index)
    out["seconds"] = time.perf_counter() - t0
    return out


#: One live ranking request: (user index, k, max_per_artist, candidate mask or None).
_RankRequest = tuple[int, int, "int | None", "np.ndarray | None"]


def _rank(live: LiveModel, batch: list[_RankRequest]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k song indices and scores per request, in one scoring pass for the whole batch
    (the caller holds ``live.lock``). With ``max_per_artist`` a request ranks ``max(10k, 100)``
    candidates and, when the cap leaves fewer than ``k``, the whole catalogue again."""
    n_songs = live.snap.num_songs
    kks = [min(k if cap is None else max(10 * k, 100), n_songs) for _, k, cap, _ in batch]
    masks = [m for *_, m in batch]
    mask = None
    if any(m is not None for m in masks):
        everything = np.ones(n_songs, dtype=bool)
        mask = np.stack([everything if m is None else m for m in masks])
    users = np.array([u for u, *_ in batch], dtype=np.int64)
    all_ids, all_scores = live.rec.recommend(users, max(kks), live.full, candidates_mask=mask)
    from gnn.users import cap_ranked

    out = []
    for row, ((u, k, cap, m), kk) in enumerate(zip(batch, kks, strict=True)):
        ids, scores = all_ids[row : row + 1, :kk], all_scores[row : row + 1, :kk]
        if cap is not None:
            ids, scores, short = cap_ranked(ids, scores, _song_artists(live), k, cap)
            if short[0] and kk < n_songs:  # the cap left fewer than k: rank everything
                got = live.rec.recommend(np.array([u]), n_songs, live.full, candidates_mask=m)
                ids, scores, _ = cap_ranked(*got, _song_artists(live), k, cap)
        keep = (ids[0] >= 0) & np.isfinite(scores[0])
        out.append((ids[0][keep], scores[0][keep]))
    return out


#: A user's memoised ranking (see :class:`_RankBatcher`) holds at most this many songs.
MEMO_SONGS = 20_000
#: Bytes of memoised rankings kept per loaded run; the least recently used go first.
MEMO_BYTES = 256 * 2**20


class _RankBatcher:
    """Dynamic batching of the live rankings of concurrent requests, over memoised rankings.

    A request queues its ranking and waits; the queue is scored at the next turn of the event
    loop, in one pass (one ``[n, D] x [D, S]`` product instead of n). A ranking from cached
    embeddings takes about a millisecond, less than the hand-off to a worker thread, so the
    batch is scored on the event loop itself; when a fold-in holds the model (``live.lock``),
    it goes to a worker thread and waits there.

    Memo (issue 14, item 7): the first request for a user ranks their whole catalogue (up to
    ``memo_songs`` songs) once; later requests for them, whatever their rules, k and cap, read
    that ranking in order, keep the songs their rules allow and cut with the cap. The loaded
    run's scores of a user of its snapshot never change (a user with new plays is folded in,
    not ranked here), so the memo needs no expiry; it lives as long as the loaded run. A
    request the memo cannot fill (a list cut at ``memo_songs``) is ranked exactly. Results
    equal one-by-one ranking exactly (``tests/test_api_units.py``): a masked ranking is the
    full ranking (score, then song index) restricted to the allowed songs.
    """

    def __init__(
        self, live: LiveModel, *, memo_songs: int = MEMO_SONGS, memo_bytes: int = MEMO_BYTES
    ) -> None:
        self.live = live
        self._queue: list[tuple[_RankRequest, asyncio.Future[tuple[np.ndarray, np.ndarray]]]] = []
        self.memo_songs = memo_songs
        self.memo_bytes = memo_bytes
        self._memo: OrderedDict[int, tuple[np.ndarray, np.ndarray, bool]] = OrderedDict()
        self._memo_size = 0

    async def rank(
        self, u: int, k: int, rules: Rules, max_per_artist: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        mask = rules.song_mask(self.live.snap)
        memo = self._memo.get(u)
        if memo is None:
            memo = await self._remember(u)
        else:
            self._memo.move_to_end(u)
        got = _from_ranking(memo, mask, k, max_per_artist, _song_artists(self.live))
        if got is not None:
            return got
        return await self._queued((u, k, max_per_artist, mask))

    async def _remember(self, u: int) -> tuple[np.ndarray, np.ndarray, bool]:
        depth = min(self.live.snap.num_songs, self.memo_songs)
        memo = self._memo_of(*await self._queued((u, depth, None, None)), depth)
        self._keep(u, memo)
        return memo

    def remember_many(self, users: list[int], batch: int = 64) -> int:
        """Memoise the rankings of ``users`` now (a worker thread at start, before requests
        come), ``batch`` at a time, while the memo's budget has room (nothing is evicted);
        returns how many."""
        depth = min(self.live.snap.num_songs, self.memo_songs)
        done = 0
        todo = [u for u in dict.fromkeys(users) if u not in self._memo]
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            with self.live.lock:
                ranked = _rank(self.live, [(u, depth, None, None) for u in chunk])
            for u, (ids, scores) in zip(chunk, ranked, strict=True):
                memo = self._memo_of(ids, scores, depth)
                if self._memo_size + memo[0].nbytes + memo[1].nbytes > self.memo_bytes:
                    return done
                self._keep(u, memo)
                done += 1
        return done

    def _memo_of(
        self, ids: np.ndarray, scores: np.ndarray, depth: int
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """A memo entry: the ranking, and whether it is complete (every candidate of the user
        is in it, none was cut at ``depth``)."""
        return ids.astype(np.int32), scores, depth == self.live.snap.num_songs or len(ids) < depth

    def _keep(self, u: int, memo: tuple[np.ndarray, np.ndarray, bool]) -> None:
        """Store ``memo``, the least recently used going first when the budget is full (not
        stored: one over the whole budget)."""
        size = memo[0].nbytes + memo[1].nbytes
        if u in self._memo or size > self.memo_bytes:
            return
        while self._memo and self._memo_size + size > self.memo_bytes:
            _, (old_ids, old_scores, _) = self._memo.popitem(last=False)
            self._memo_size -= old_ids.nbytes + old_scores.nbytes
        self._memo[u] = memo
        self._memo_size += size

    async def _queued(self, request: _RankRequest) -> tuple[np.ndarray, np.ndarray]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[np.ndarray, np.ndarray]] = loop.create_future()
        self._queue.append((request, fut))
        if len(self._queue) == 1:
            loop.call_soon(self._flush, loop)
        return await fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._queue = self._queue, []
        if self.live.lock.acquire(blocking=False):
            try:
                self._settle(batch, self._score(batch))
            finally:
                self.live.lock.release()
            return
        job = loop.run_in_executor(None, self._score_locked, batch)
        job.add_done_callback(lambda j: self._settle(batch, j.exception() or j.result()))

    def _score(self, batch: list[Any]) -> list[tuple[np.ndarray, np.ndarray]] | BaseException:
        try:
            return _rank(self.live, [req for req, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            return exc

    def _score_locked(
        self, batch: list[Any]
    ) -> list[tuple[np.ndarray, np.ndarray]] | BaseException:
        with self.live.lock:
            return self._score(batch)

    @staticmethod
    def _settle(batch: list[Any], result: Any) -> None:
        for n, (_, fut) in enumerate(batch):
            if fut.done():  # the request was cancelled (client gone)
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result[n])


def _batcher(live: LiveModel) -> _RankBatcher:
    """The live model's batcher (one per loaded run; made on first use)."""
    got = getattr(live, "_batcher", None)
    if got is None:
        got = _RankBatcher(live)
        live._batcher = got  # type: ignore[attr-defined]
    return got


def _from_ranking(
    memo: tuple[np.ndarray, np.ndarray, bool],
    mask: np.ndarray | None,
    k: int,
    cap: int | None,
    artists: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The first ``k`` songs of a memoised ranking that ``mask`` allows, at most ``cap`` per
    artist; None when the memo runs out before ``k`` and is not the whole ranking.

    The allowed positions come from one vectorised pass over the memo; the cap then walks
    them in order, 64 at a time and eightfold more each round, so a request reads about as
    many songs as its list needs (a song without artist, -1, is never capped)."""
    from gnn.users import cap_walk

    ids, scores, complete = memo
    allowed = np.arange(len(ids)) if mask is None else np.flatnonzero(mask[ids])
    if cap is None:
        chosen = allowed[:k]
    else:
        seen: dict[int, int] = {}
        got: list[int] = []
        start, size = 0, 64
        while start < len(allowed) and len(got) < k:
            window = allowed[start : start + size]
            cap_walk(window.tolist(), artists[ids[window]].tolist(), k, cap, seen, got)
            start, size = start + size, size * 8
        chosen = np.array(got, dtype=np.int64)
    if len(chosen) < k and not complete:
        return None
    return ids[chosen].astype(np.int64), scores[chosen]


def _live_items(
    live: LiveModel,
    u: int,
    k: int,
    rules: Rules,
    explain: bool,
    max_per_artist: int | None = None,
) -> list[RecommendationItem]:
    from gnn.explain import GradientExplainer
    from gnn.users import Explained, writeback_rows

    users = np.array([u])
    with live.lock:
        ((ids, scores),) = _rank(live, [(u, k, max_per_artist, rules.song_mask(live.snap))])
        ids, scores = ids[None, :], scores[None, :]
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


async def _fold_in(
    *,
    graph: Graph,
    live: LiveModel,
    user_id: str,
    k: int,
    rules: Rules,
    explain: bool,
    max_per_artist: int | None,
) -> Recommendations | None:
    """The active run's list from the user's current plays (``fold_in``); None when none of
    their songs is known to it (the usual paths answer). A linear run's evidence is exact; a
    graph run's is the gradient x attention of the user's own edges (played songs, genre
    shares) on their ego network, milliseconds either way."""
    current = await graph.read("api/user_plays", user_id=user_id)
    plays = {r["song_id"]: int(r["plays"]) for r in current}
    skips = {r["song_id"]: int(r["skips"]) for r in current if r["skips"]}
    evidence = explain
    out = await anyio.to_thread.run_sync(
        _fold_in_rows, live, user_id, plays, skips, k, rules, max_per_artist, evidence
    )
    if out is None:
        return None
    rows, ignored = out
    explain = evidence
    names = _names(live)
    meta = await known_songs(graph=graph, song_ids=[r.song_id for r in rows])
    items = [
        RecommendationItem(
            rank=n + 1,
            song_id=row.song_id,
            name=meta.get(row.song_id, (None, None))[0],
            artist=meta.get(row.song_id, (None, None))[1],
            score=row.score,
            reason=row.reason if explain else None,
            evidence=_row_evidence(row, names) if explain else None,
        )
        for n, row in enumerate(rows)
    ]
    return Recommendations(
        user_id=user_id,
        source="fold_in",
        cold_start=False,
        model=live.name,
        run_id=live.run_id,
        genre=rules.genre,
        explained=explain,
        items=items,
        ignored=ignored,
    )


def _fold_in_rows(
    live: LiveModel,
    user_id: str,
    plays: dict[str, int],
    skips: dict[str, int],
    k: int,
    rules: Rules,
    max_per_artist: int | None,
    explain: bool,
) -> tuple[list[Any], list[str]] | None:
    from gnn.users import fold_in

    with live.lock:
        got = fold_in(
            live.rec, live.snap, user_id, plays, k, song_index=live.song_index,
            candidates_mask=rules.song_mask(live.snap), explain=explain, skips=skips,
            observed=live.full, max_per_artist=max_per_artist,
        )  # fmt: skip
    if not got.rows and len(got.ignored) == len(plays):
        return None
    return got.rows, got.ignored


def _song_id_list(live: LiveModel) -> list[str]:
    """The snapshot's song ids as a list of str (index -> id), cached on the live model."""
    cached = getattr(live, "_song_id_list", None)
    if cached is None:
        cached = [str(s) for s in live.snap.song_ids]
        live._song_id_list = cached  # type: ignore[attr-defined]
    return cached


def _song_artists(live: LiveModel) -> np.ndarray:
    """The artist index of each snapshot song (-1: none), cached on the live model."""
    cached = getattr(live, "_song_artists", None)
    if cached is None:
        from gnn.users import song_artists

        cached = song_artists(live.snap)
        live._song_artists = cached  # type: ignore[attr-defined]
    return cached


def _row_evidence(row: Any, names: dict[tuple[str, str], str]) -> list[Evidence]:
    """A write-back row's evidence as response items, with node names."""
    return [
        Evidence(
            kind=e.kind, weight=e.weight, label=e.label, id=e.id, name=names.get((e.label, e.id))
        )
        for e in row.evidence
    ]


def _snapshot_names(live: LiveModel) -> Callable[[str], tuple[str | None, str | None] | None]:
    """A song's (name, artist) in the run's snapshot (None: not there, or no names exported)."""
    snap = live.snap
    if snap.song_names is None:
        return lambda song_id: None
    artists = _song_artists(live)
    artist_names = snap.artist_names

    def names(song_id: str) -> tuple[str | None, str | None] | None:
        i = live.song_index.get(song_id)
        if i is None:
            return None
        a = int(artists[i])
        artist = None if a < 0 or artist_names is None else artist_names[a]
        return snap.song_names[i], artist

    return names


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
