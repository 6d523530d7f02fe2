"""A small world for the API tests, built through the project's own pipeline.

Synthetic data -> ingest -> export -> EnhancedGAT (a few epochs) -> registry (active run) ->
recommendations and explanations written back for the even-numbered users only, so the odd
ones must be scored live. One odd user also holds rows of an older run (stale -> live), and
one user exists without any history (cold start).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import neo4j
import numpy as np
import pandas as pd

from spotify_engine.settings import Settings

OLD_RUN = "20200101-000000-enhancedgat-000000"
EMPTY_USER = "U_EMPTY"


@dataclass
class World:
    run_id: str
    runs_root: Path
    fresh_user: str
    live_user: str
    stale_user: str
    empty_user: str
    songs: list[str]
    fresh_song: str
    playlist_id: str
    genre: str


def build_world(driver: neo4j.Driver, settings: Settings, folder: Path) -> World:
    from gnn.graph import export_snapshot
    from gnn.users import prepare, recommend_and_explain, train_and_write_back, writeback_rows
    from graphdb import Writeback
    from ingest import Loader, SyntheticConfig, ingest

    db = settings.neo4j_database
    ingest(
        "synthetic",
        None,
        driver=driver,
        settings=settings,
        out_dir=folder / "data",
        synthetic=SyntheticConfig(
            users=40,
            songs=200,
            artists=20,
            genres=6,
            days=14,
            mean_plays_per_user=80,
            playlists_per_user=1.0,
            seed=7,
        ),
    )
    snap = export_snapshot(driver, db)
    exp = prepare(snap)
    runs_root = folder / "runs"
    out = train_and_write_back(
        exp,
        "enhancedgat",
        runs_root=runs_root,
        driver=driver,
        database=db,
        overrides={"epochs": 3, "embedding_dim": 16},
        users=np.arange(0, snap.num_users, 2),
        k=10,
    )
    rec, run_id = out.train.recommender, out.train.run.run_id
    rows, _ = writeback_rows(snap, out.writeback.explained)
    full = out.writeback.full
    stale = str(snap.user_ids[3])
    old = recommend_and_explain(rec, full, np.array([3]), k=5)
    old_rows, _ = writeback_rows(snap, old)
    Writeback(driver, db, run_id=OLD_RUN, model=rec.name).recommendations(old_rows)
    Loader(driver, db).load_plays(pd.DataFrame(), new_users=[EMPTY_USER])

    fresh_user = str(snap.user_ids[0])
    fresh_song = rows[0].song_id
    assert rows[0].user_id == fresh_user
    pl, _, _ = driver.execute_query(
        "MATCH (p:Playlist)-[:CONTAINS]->(s:Song) WITH p, count(s) AS n WHERE n >= 3 "
        "RETURN p.id AS id ORDER BY id LIMIT 1",
        database_=db,
    )
    genre, _, _ = driver.execute_query(
        "MATCH (g:Genre)<-[:IN_GENRE]-(:Song)<-[l:LISTENED]-() "
        "RETURN g.id AS id, sum(l.plays) AS n ORDER BY n DESC LIMIT 1",
        database_=db,
    )
    return World(
        run_id=run_id,
        runs_root=runs_root,
        fresh_user=fresh_user,
        live_user=str(snap.user_ids[1]),
        stale_user=stale,
        empty_user=EMPTY_USER,
        songs=[str(s) for s in snap.song_ids],
        fresh_song=fresh_song,
        playlist_id=pl[0]["id"],
        genre=genre[0]["id"],
    )


# -- a real uvicorn server in a subprocess -----------------------------------------------------
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SPOTIFY_ENGINE_API_KEY"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["SPOTIFY_ENGINE_NEO4J_HOME"] = str(settings.local_home)
    env["SPOTIFY_ENGINE_BOLT_PORT"] = str(settings.bolt_port)
    env["SPOTIFY_ENGINE_HTTP_PORT"] = str(settings.http_port)
    if settings.neo4j_uri:
        env["NEO4J_URI"] = settings.neo4j_uri
    if settings.neo4j_password:
        env["NEO4J_PASSWORD"] = settings.neo4j_password
    env.update(extra)
    return env


@contextlib.contextmanager
def run_server(
    env: dict[str, str], log: Path, *, wait_s: float = 180, args: tuple[str, ...] = ()
) -> Iterator[Server]:
    """``spotify-engine serve [args]`` on a free port; yields once /health answers."""
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "serve",
        "--port",
        str(port),
        *args,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the API exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(url=url, proc=proc, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
