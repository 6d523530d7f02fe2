"""Play events: a batch becomes one listening session, loaded exactly once.

The batch's session id is derived from the user and the idempotency key (the
``Idempotency-Key`` header, the body's ``idempotency_key``, or else a hash of the batch
itself), and the ingest loader creates a session only if its id is new, adding its plays to
``LISTENED`` and ``FOLLOWED_BY`` in the same transaction. So a repeated batch changes nothing.
Unknown users are created (an app's new listener); unknown songs are refused (404) before
anything is written.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC

import anyio
import pandas as pd

from api.schemas import PlaysBatch, PlaysRecorded
from api.services.cache import TTLCache
from api.services.catalog import require_songs
from api.services.graph import Graph
from api.services.metrics import neo4j_error
from spotify_engine.errors import CredentialsMissing, CredentialsRefused, GraphError, QueryFailed
from spotify_engine.settings import Settings


def check_api_key(*, settings: Settings, given: str | None) -> None:
    """401 without a key, 403 with a wrong one or when writes are not configured."""
    expected = settings.api_key
    if not expected:
        raise CredentialsRefused(
            "writes are disabled: no API key is configured",
            hint="set SPOTIFY_ENGINE_API_KEY in the environment or .env and restart the API",
        )
    if not given:
        raise CredentialsMissing("this endpoint needs an API key")
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise CredentialsRefused("the API key is not valid")


def session_id(user_id: str, key: str) -> str:
    digest = hashlib.sha256(f"{user_id}\0{key}".encode()).hexdigest()[:24]
    return f"api:{user_id}:{digest}"


def batch_key(batch: PlaysBatch) -> str:
    body = [(p.song_id, p.at.isoformat(), p.ms_played, p.skipped) for p in batch.plays]
    return "content:" + hashlib.sha256(json.dumps(body).encode()).hexdigest()


def plays_table(batch: PlaysBatch, sid: str) -> pd.DataFrame:
    """The ``plays`` table of the loader, one session, in play order."""
    events = sorted(
        enumerate(batch.plays),
        key=lambda t: (t[1].at if t[1].at.tzinfo else t[1].at.replace(tzinfo=UTC), t[0]),
    )
    rows = []
    for pos, (_, p) in enumerate(events):
        at = p.at if p.at.tzinfo else p.at.replace(tzinfo=UTC)
        rows.append(
            {
                "user_id": batch.user_id,
                "song_id": p.song_id,
                "session_id": sid,
                "pos": pos,
                "ts": int(at.timestamp() * 1000),
                "ms_played": float("nan") if p.ms_played is None else float(p.ms_played),
                "skipped": p.skipped,
            }
        )
    return pd.DataFrame(rows)


async def record_plays(
    *, graph: Graph, cache: TTLCache, batch: PlaysBatch, idempotency_key: str | None
) -> PlaysRecorded:
    from ingest import Loader

    key = idempotency_key or batch.idempotency_key or batch_key(batch)
    await require_songs(graph=graph, song_ids=[p.song_id for p in batch.plays])
    user = await graph.read_one("api/get_user", user_id=batch.user_id)
    new_user = user is None or not user["found"]
    sid = session_id(batch.user_id, key)
    table = plays_table(batch, sid)

    def load() -> int:
        loader = Loader(graph.sync_driver(), graph.database)
        try:
            res = loader.load_plays(table, new_users=[batch.user_id] if new_user else None)
        except QueryFailed:
            # A concurrent request with the same key created the session first (unique id):
            # loading again now finds it and changes nothing.
            res = loader.load_plays(table)
        return res.sessions_new

    try:
        created = await anyio.to_thread.run_sync(load)
    except GraphError as exc:
        neo4j_error(exc)
        raise
    if created:
        cache.clear()
    return PlaysRecorded(
        user_id=batch.user_id,
        session_id=sid,
        plays=len(table),
        duplicate=created == 0,
        user_created=new_user and created > 0,
    )
