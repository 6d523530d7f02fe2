"""Pure pieces of the API (issue 6): no server, no database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import api
from api.errors import STATUS
from api.schemas import PlaylistContinueRequest, PlaysBatch
from api.services.cache import TTLCache
from api.services.events import batch_key, check_api_key, plays_table, session_id
from spotify_engine import errors
from spotify_engine.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def test_every_routed_error_has_a_status() -> None:
    """Each typed error the services raise on purpose maps to a 4xx/5xx other than 500."""
    mapped = {cls for cls, _, _ in STATUS}
    for cls in (
        errors.NotFound,
        errors.CredentialsMissing,
        errors.CredentialsRefused,
        errors.GraphUnavailable,
    ):
        assert any(issubclass(cls, m) for m in mapped), cls
    status = {cls: st for cls, st, _ in STATUS}
    assert status[errors.CredentialsMissing] == 401 and status[errors.CredentialsRefused] == 403
    assert status[errors.GraphUnavailable] == 503 and status[errors.NotFound] == 404


def test_api_key_rules() -> None:
    with pytest.raises(errors.CredentialsRefused, match="no API key is configured") as exc:
        check_api_key(settings=Settings(api_key=None), given="x")
    assert "SPOTIFY_ENGINE_API_KEY" in (exc.value.hint or "")
    s = Settings(api_key="k" * 20)
    with pytest.raises(errors.CredentialsMissing):
        check_api_key(settings=s, given=None)
    with pytest.raises(errors.CredentialsRefused, match="not valid"):
        check_api_key(settings=s, given="k" * 19)
    check_api_key(settings=s, given="k" * 20)


def test_batches_become_one_ordered_session_with_a_stable_id() -> None:
    batch = PlaysBatch.model_validate(
        {
            "user_id": "u1",
            "plays": [
                {"song_id": "b", "at": "2026-01-01T10:05:00+01:00"},
                {"song_id": "a", "at": "2026-01-01T09:00:00Z", "ms_played": 1000},
            ],
        }
    )
    sid = session_id("u1", "key-1")
    assert sid == session_id("u1", "key-1") != session_id("u2", "key-1")
    assert sid != session_id("u1", "key-2")
    t = plays_table(batch, sid)
    assert t["song_id"].tolist() == ["a", "b"] and t["pos"].tolist() == [0, 1]
    assert t["ts"].tolist() == [1767258000000, 1767258300000]
    assert t["ms_played"].isna().tolist() == [False, True]
    assert batch_key(batch) == batch_key(PlaysBatch.model_validate(batch.model_dump()))


def test_playlist_request_needs_seeds_or_a_name() -> None:
    with pytest.raises(ValueError, match="or a name"):
        PlaylistContinueRequest.model_validate({"k": 3})
    with pytest.raises(ValueError, match="or a name"):
        PlaylistContinueRequest.model_validate({"k": 3, "name": "  "})
    with pytest.raises(ValueError, match="at most one"):
        PlaylistContinueRequest.model_validate(
            {"song_ids": ["S1"], "track_uris": ["spotify:track:abc"]}
        )
    ok = PlaylistContinueRequest.model_validate({"track_uris": ["spotify:track:abc"]})
    assert ok.seeds == ["spotify:track:abc"]
    assert PlaylistContinueRequest.model_validate({"name": "Chill Rock"}).seeds == []


def test_ttl_cache_expires_and_can_be_disabled() -> None:
    c = TTLCache(0.05)
    c.put("a", 1)
    assert c.get("a") == 1
    time.sleep(0.06)
    assert c.get("a") is None
    off = TTLCache(0)
    off.put("a", 1)
    assert off.get("a") is None


def test_recommendations_query_is_one_model_documented_as_parameters() -> None:
    """Issue 14 item 7: the hot route reads its query through one model (api.query); the
    OpenAPI operation still lists each parameter, and bad values are the usual 422."""
    from fastapi.exceptions import RequestValidationError
    from starlette.requests import Request

    from api.routers.users import RECOMMENDATIONS_QUERY

    op = api.create_app(Settings()).openapi()["paths"]["/users/{user_id}/recommendations"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {"user_id", "k", "explain", "max_per_artist", "exclude_songs",
                           "exclude_artists", "genre"}  # fmt: skip
    assert params["user_id"]["in"] == "path" and params["k"]["in"] == "query"
    assert params["k"]["schema"]["maximum"] == 100 and not params["k"]["required"]
    assert params["exclude_songs"]["schema"]["type"] == "array"

    def parse(query: str) -> object:
        scope = {"type": "http", "query_string": query.encode(), "headers": []}
        return RECOMMENDATIONS_QUERY.parse(Request(scope))

    q = parse("k=5&exclude_songs=S1&exclude_songs=S2&explain=false&other=ignored")
    assert (q.k, q.exclude_songs, q.explain, q.genre) == (5, ["S1", "S2"], False, None)  # type: ignore[attr-defined]
    with pytest.raises(RequestValidationError) as exc:
        parse("k=0&exclude_songs=bad%20id")
    assert [e["loc"] for e in exc.value.errors()] == [("query", "k"), ("query", "exclude_songs", 0)]


def test_fast_path_serves_the_route_ahead_and_takes_path_parameters_only() -> None:
    from fastapi import APIRouter, Request
    from fastapi.routing import APIRoute

    from api.lean import FastPath

    first = api.create_app(Settings()).router.routes[0]
    assert isinstance(first, FastPath) and first.path == "/users/{user_id}/recommendations"

    async def with_query(user_id: str, request: Request, k: int = 10) -> None: ...

    router = APIRouter()
    router.add_api_route("/{user_id}", with_query)
    route = router.routes[0]
    assert isinstance(route, APIRoute)
    with pytest.raises(TypeError, match="path parameters and request only"):
        FastPath(route)


def test_openapi_lists_every_endpoint() -> None:
    paths = set(api.create_app(Settings()).openapi()["paths"])
    assert paths == {
        "/health",
        "/ready",
        "/users/{user_id}/recommendations",
        "/users/{user_id}/recommendations/{song_id}/explanation",
        "/users/{user_id}/profile",
        "/songs/{song_id}",
        "/songs/{song_id}/similar",
        "/sessions/next",
        "/playlists/continue",
        "/playlists/{playlist_id}/continuation",
        "/events/plays",
        "/models",
        "/models/active",
    }


def test_compose_has_the_api_next_to_neo4j() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = compose["services"]["api"]
    assert svc["build"] == "."
    assert svc["depends_on"] == {"neo4j": {"condition": "service_healthy"}}
    assert svc["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"
    assert svc["env_file"][0]["path"] == ".env"
    docker = (REPO / "Dockerfile").read_text()
    for pkg in ("spotify_engine", "ingest", "graphdb", "gnn", "api", "cypher"):
        assert f"COPY {pkg} ./{pkg}" in docker
    assert 'CMD ["spotify-engine", "serve"]' in docker


def test_rules_parameters_and_snapshot_mask() -> None:
    """Issue 14: the rules as Cypher parameters and as the live scorer's candidate mask."""
    from types import SimpleNamespace

    import numpy as np

    from api.services.rules import Rules

    rules = Rules.of(exclude_songs=["s2", "s2"], exclude_artists=["The Band"], genre="Rock")
    assert rules.exclude_songs == ("s2",) and rules.any and not Rules().any
    p = rules.params(["seed"])
    assert p == {
        "exclude_songs": ["s2", "seed"],
        "exclude_artists": ["The Band", "the band"],
        "genre": "Rock",
    }
    snap = SimpleNamespace(
        num_songs=4,
        num_genres=2,
        num_artists=2,
        song_ids=np.array(["s0", "s1", "s2", "s3"], dtype=object),
        genre_ids=np.array(["g0", "g1"], dtype=object),
        genre_names=np.array(["rock", "jazz"], dtype=object),
        artist_ids=np.array(["a0", "a1"], dtype=object),
        artist_names=np.array(["The Band", "Other"], dtype=object),
        song_genre=np.array([[0, 1, 2, 3], [0, 0, 0, 1]]),
        song_artist=np.array([[0, 1, 2, 3], [0, 1, 1, 1]]),
    )
    # s0: artist excluded; s2: song excluded; s3: other genre; s1 is all that is left.
    assert rules.song_mask(snap).tolist() == [False, True, False, False]
    assert Rules().song_mask(snap) is None
    assert Rules.of(exclude_artists=["a1"]).song_mask(snap).tolist() == [True, False, False, False]


def test_metrics_render_the_active_runs() -> None:
    from api.services import metrics

    metrics.cache_lookup("recs", hit=True)
    text, media_type = metrics.render(
        active={"user": "run-1", "session": None}, loaded={"user": True, "session": False}
    )
    assert media_type.startswith("text/plain")
    out = text.decode()
    assert (
        f'spotify_engine_active_run{{run_id="run-1",task="user",worker="{metrics.WORKER}"}} 1.0'
        in out
    )
    assert 'task="session"' in out and 'run_id="none"' in out
    assert 'spotify_engine_cache_lookups_total{kind="recs",result="hit"}' in out
    text, _ = metrics.render(active={"user": "run-2"}, loaded={})
    assert 'run_id="run-1"' not in text.decode()  # the old run's series is gone


def test_batched_live_ranking_equals_one_by_one() -> None:
    """Concurrent live requests are scored in one batch; each gets exactly what it gets alone,
    whatever its rules, k and max_per_artist (including the whole-catalogue rerun of a cap).
    Issue 14 item 7: so do requests served from a user's memoised ranking (a second round),
    including a memo cut short of the catalogue (exact ranking when it runs out)."""
    import asyncio

    import numpy as np

    from api.services.models import LiveModel
    from api.services.recommendations import _rank, _RankBatcher
    from api.services.rules import Rules
    from gnn.graph._data import build_train_data, random_snapshot
    from gnn.users import EASE

    snap = random_snapshot(num_users=30, num_songs=80, num_artists=6, plays_per_user=12, seed=5)
    full = build_train_data(snap, np.ones(len(snap.play_user), dtype=bool))
    rec = EASE()
    rec.fit(full)
    live = LiveModel(
        run_id="r", name="ease", rec=rec, snap=snap, full=full,
        user_index={str(u): i for i, u in enumerate(snap.user_ids)},
        song_index={str(s): i for i, s in enumerate(snap.song_ids)},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    requests = []
    for n in range(40):
        rules = Rules.of(
            exclude_songs=[f"S{i}" for i in rng.choice(80, size=n % 4, replace=False)],
            exclude_artists=[f"A{n % 6}"] if n % 3 == 0 else [],
            genre=str(snap.genre_ids[n % 3]) if n % 5 == 0 else None,
        )
        requests.append((n % 30, 1 + n % 12, [None, 1, 2][n % 3], rules))

    for memo_songs in (80, 15):
        batcher = _RankBatcher(live, memo_songs=memo_songs)

        async def all_at_once(b: _RankBatcher = batcher) -> list[tuple[np.ndarray, np.ndarray]]:
            return await asyncio.gather(
                *(b.rank(u, k, rules, cap) for u, k, cap, rules in requests)
            )

        first = asyncio.run(all_at_once())
        assert len(batcher._memo) == len({u for u, *_ in requests})
        again = asyncio.run(all_at_once())  # every user now from the memo
        assert sum(len(ids) for ids, _ in first) > 0
        for (u, k, cap, rules), *answers in zip(requests, first, again, strict=True):
            ((one_ids, one_scores),) = _rank(live, [(u, k, cap, rules.song_mask(snap))])
            for ids, scores in answers:
                assert ids.tolist() == one_ids.tolist() and np.allclose(scores, one_scores)
                assert len(ids) <= k
                mask = rules.song_mask(snap)
                assert mask is None or mask[ids].all()

    # the warm-up at start memoises the same rankings, while the budget has room (no eviction)
    warmed = _RankBatcher(live)
    assert warmed.remember_many(list(range(30)), batch=7) == 30
    answers = asyncio.run(all_at_once(warmed))
    assert warmed._queue == [] and len(warmed._memo) == 30
    for (u, k, cap, rules), (ids, _) in zip(requests, answers, strict=True):
        ((one_ids, _),) = _rank(live, [(u, k, cap, rules.song_mask(snap))])
        assert ids.tolist() == one_ids.tolist()
    one_user = sum(a.nbytes for a in warmed._memo[0][:2])
    small = _RankBatcher(live, memo_bytes=3 * one_user)
    assert small.remember_many(list(range(30))) == 3 and list(small._memo) == [0, 1, 2]


def test_ttl_cache_spreads_expiry() -> None:
    """Entries stored together expire at different times, within the last quarter of a TTL,
    so a warm-up's entries do not all go stale (and are read again) in the same instant."""
    from api.services.cache import TTL_JITTER

    c = TTLCache(100.0)
    t0 = time.monotonic()
    for n in range(200):
        c.put(n, n)
    lives = sorted(c._data["other"][n][0] - t0 for n in range(200))
    assert lives[0] >= 100.0 * (1 - TTL_JITTER) - 0.1 and lives[-1] <= 100.0 + 0.1
    assert lives[-1] - lives[0] > 10.0  # spread over the quarter, not one instant
    # a warm-up's entries (spread=True) expire over the whole TTL (issue 14 item 7)
    for n in range(200):
        c.put(("w", n), n, spread=True)
    warm = sorted(c._data["w"][("w", n)][0] - t0 for n in range(200))
    assert warm[0] < 100.0 * 0.25 and warm[-1] > 100.0 * 0.75 and warm[-1] <= 100.0 + 0.1


def test_full_cache_evicts_the_oldest_of_one_kind_only() -> None:
    """Issue 14 item 7: one-off answers (every rules request its own key) filled the cache,
    which then emptied itself whole: every user's rows were read again at once and the API
    stalled for 300 ms. A full kind now drops its own oldest entries; other kinds stay."""
    c = TTLCache(100.0, max_entries=100)
    c.put(("user_state", "U1"), "rows")
    for n in range(100):
        c.put(("recs", n), n)
    c.put(("recs", 0), "again")  # stored again: now the newest
    c.put(("recs", 100), 100)  # the kind is full: down to its newest 75, then this one
    recs = c._data["recs"]
    assert len(recs) == 76 and ("recs", 100) in recs and ("recs", 0) in recs
    assert ("recs", 1) not in recs and ("recs", 25) not in recs and ("recs", 26) in recs
    assert c.get(("user_state", "U1")) == "rows"


def test_background_reads_take_a_chunk_at_a_time() -> None:
    """A background read decodes its rows on the event loop: at most REFRESH_CHUNK keys per
    read, so no read pauses the requests for long (issue 14 item 7)."""
    import asyncio

    from api.services.cache import REFRESH_CHUNK

    async def scenario() -> list[int]:
        cache = TTLCache(ttl_s=10.0)
        sizes: list[int] = []

        async def read(keys: list[object]) -> dict[object, object]:
            sizes.append(len(keys))
            await asyncio.sleep(0)
            return {key: "v" for key in keys}

        cache.refresh_many([("k", n) for n in range(2 * REFRESH_CHUNK + 5)], read, queue="q")
        for _ in range(50):
            await asyncio.sleep(0)
        assert all(cache.get(("k", n)) == "v" for n in range(2 * REFRESH_CHUNK + 5))
        return sizes

    assert asyncio.run(scenario()) == [REFRESH_CHUNK, REFRESH_CHUNK, 5]


def test_cache_serves_stale_once_while_reading_again() -> None:
    """Stale-while-revalidate: an expired entry is answered while one background read (for
    all the keys queued meanwhile) replaces it; clear() drops a read begun before it."""
    import asyncio

    from api.services.cache import STALE_TTLS, TTLCache

    async def scenario() -> None:
        cache = TTLCache(ttl_s=0.05)
        reads: list[list[object]] = []

        async def read(keys: list[object]) -> dict[object, object]:
            reads.append(list(keys))
            await asyncio.sleep(0.01)
            return {key: f"new {key}" for key in keys}

        cache.put("a", "old a")
        cache.put("b", "old b")
        assert cache.peek("a") == ("old a", False)
        await asyncio.sleep(0.06)
        assert cache.get("a") is None  # plain get: expired is a miss
        assert cache.peek("a") == ("old a", True)
        cache.refresh_many(["a"], read, queue="q")
        cache.refresh_many(["a", "b"], read, queue="q")  # "a" already queued: only "b" added
        await asyncio.sleep(0.025)  # the read (10 ms) is stored; the entries are fresh (>= 37 ms)
        assert reads == [["a", "b"]]
        assert cache.peek("a") == ("new a", False) and cache.peek("b") == ("new b", False)
        # a read that began before clear() is not stored
        await asyncio.sleep(0.06)
        cache.refresh_many(["a"], read, queue="q")
        await asyncio.sleep(0.005)  # the read is under way
        cache.clear()
        await asyncio.sleep(0.03)
        assert cache.peek("a") == (None, False)
        # far past the stale window: a miss, nothing read in the background
        cache.put("c", "old c")
        await asyncio.sleep(0.05 * (STALE_TTLS + 1.5))
        assert cache.lookup("c", read, queue="q") is None

    asyncio.run(scenario())
