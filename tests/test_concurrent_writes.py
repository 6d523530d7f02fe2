"""Several loaders writing to one database at once (issue 16): the aggregates stay exact.

The loader runs in the CLI (``spotify-engine ingest``) and in every API worker
(``POST /events/plays``). Before the ``IngestLock``, a run's CREATE fast path trusted what it had
learnt in earlier transactions, so 40 concurrent event batches for one new user and one song
left 12 ``LISTENED`` edges between the pair. Here threads, API workers and a CLI ingest write
the same new users and songs at once, and afterwards every pair has exactly one ``LISTENED``
whose ``plays`` is the number of its ``PLAYED``, and ``data validate``'s consistency checks pass.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import neo4j
import pandas as pd
import pytest
from _api_world import REPO, run_server, server_env

from graphdb import apply_schema, wipe_graph
from ingest import Loader, ingest, validate_graph
from spotify_engine.settings import Settings

pytestmark = pytest.mark.neo4j

EXAMPLE = REPO / "docs" / "examples" / "sessions"
KEY = "concurrent-writes-test-key"
CONSISTENCY = (
    "LISTENED.plays = PLAYED count",
    "FOLLOWED_BY.count = consecutive plays",
    "session positions are 0..n-1",
    "no orphan sessions",
)


def _rows(driver: neo4j.Driver, db: str, text: str, **params: object) -> list[dict]:
    records, _, _ = driver.execute_query(text, params, database_=db)
    return [r.data() for r in records]


def _duplicate_aggregates(driver: neo4j.Driver, db: str) -> list[dict]:
    return _rows(
        driver,
        db,
        "MATCH (a)-[r:LISTENED|FOLLOWED_BY]->(b) WITH a, b, type(r) AS t, count(r) AS n "
        "WHERE n > 1 RETURN a.id AS a, t, b.id AS b, n LIMIT 5",
    )


def _pair(driver: neo4j.Driver, db: str, user: str, song: str) -> dict:
    return _rows(
        driver,
        db,
        "MATCH (u:User {id: $u}) "
        "OPTIONAL MATCH (u)-[l:LISTENED]->(:Song {id: $s}) "
        "WITH u, count(l) AS edges, sum(l.plays) AS plays "
        "OPTIONAL MATCH (u)-[:HAD]->(:Session)-[p:PLAYED]->(:Song {id: $s}) "
        "RETURN edges, plays, count(p) AS played",
        u=user,
        s=song,
    )[0]


def _assert_consistent(driver: neo4j.Driver, db: str) -> None:
    assert _duplicate_aggregates(driver, db) == []
    checks = {c.name: c for c in validate_graph(driver, db)}
    for name in CONSISTENCY:
        assert checks[name].status == "PASS", (name, checks[name].detail)


@pytest.fixture
def base(driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """An empty graph holding the example folder's users, songs and plays."""
    db = neo4j_settings.neo4j_database
    wipe_graph(driver, db)
    apply_schema(driver, db)
    ingest("sessions", EXAMPLE, driver=driver, settings=neo4j_settings, out_dir=tmp_path / "ex")
    yield tmp_path


def _one_play(user: str, song: str, key: str, at: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [user],
            "song_id": [song],
            "session_id": [f"t:{user}:{key}"],
            "pos": [0],
            "ts": [at],
            "ms_played": [float("nan")],
            "skipped": [False],
        }
    )


def test_threads_loading_plays_for_one_new_user_and_song(
    base: Path, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """The shape of the measured failure, without HTTP: 40 one-play batches, 8 at a time."""
    db = neo4j_settings.neo4j_database
    song = _rows(driver, db, "MATCH (s:Song) RETURN s.id AS id ORDER BY id LIMIT 1")[0]["id"]
    start = threading.Barrier(8)

    def load(n: int) -> int:
        if n < 8:
            start.wait()
        res = Loader(driver, db).load_plays(
            _one_play("U_NEW", song, f"k{n}", 1_700_000_000_000 + n), new_users=["U_NEW"]
        )
        return res.sessions_new

    with ThreadPoolExecutor(8) as pool:
        created = sum(pool.map(load, range(40)))
    assert created == 40
    assert _pair(driver, db, "U_NEW", song) == {"edges": 1, "plays": 40, "played": 40}
    _assert_consistent(driver, db)


def _sessions_folder(folder: Path, user: str, songs: list[tuple[str, str]], plays: int) -> Path:
    """The example's companion files and a sessions CSV of ``plays`` plays of ``user``, one
    session every 40 minutes, cycling through ``songs`` ((track, artist) pairs)."""
    folder.mkdir(parents=True)
    for f in EXAMPLE.glob("*.csv"):
        if f.name != "synthetic_sessions.csv":
            shutil.copy(f, folder / f.name)
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    with (folder / "synthetic_sessions.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "track_id", "artist_id", "timestamp", "ms_played",
                    "track_duration_ms"])  # fmt: skip
        for i in range(plays):
            track, artist = songs[i % len(songs)]
            at = t0 + timedelta(minutes=40 * (i // 3), seconds=70 * (i % 3))
            w.writerow([user, track, artist, at.isoformat(), 60000, 180000])
    return folder


def test_api_workers_and_a_cli_ingest_at_once(
    base: Path, driver: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """``serve --workers 2`` takes event batches for one new user and song while a CLI ingest
    loads plays of the same user and songs in small transactions."""
    db = neo4j_settings.neo4j_database
    songs = [
        (r["id"], r["artist"])
        for r in _rows(
            driver,
            db,
            "MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS id, a.id AS artist "
            "ORDER BY id LIMIT 5",
        )
    ]
    user, song = "U_CONCURRENT", songs[0][0]
    folder = _sessions_folder(base / "cli", user, songs, plays=600)
    env = server_env(neo4j_settings, SPOTIFY_ENGINE_API_KEY=KEY)
    with run_server(env, base / "api.log", args=("--workers", "2")) as server:
        cli = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "ingest", "sessions",
             str(folder), "--batch-size", "6", "--out", str(base / "cli-work")],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def post(n: int) -> int:
            at = datetime(2026, 7, 1, tzinfo=UTC) + timedelta(minutes=n)
            r = httpx.post(
                server.url + "/events/plays",
                json={"user_id": user, "plays": [{"song_id": song, "at": at.isoformat()}]},
                headers={"X-API-Key": KEY, "Idempotency-Key": f"event-{n}"},
                timeout=60,
            )
            assert r.status_code in (200, 201), r.text
            return 1 if r.status_code == 201 else 0

        sent = created = 0
        with ThreadPoolExecutor(8) as pool:
            # keep events coming for as long as the CLI writes (at least 40, at most 400)
            while sent < 40 or (cli.poll() is None and sent < 400):
                created += sum(pool.map(post, range(sent, sent + 8)))
                sent += 8
        out, _ = cli.communicate(timeout=300)
        assert cli.returncode == 0, out.decode()[-2000:]
    assert created == sent  # distinct keys: every batch is a new session
    pair = _pair(driver, db, user, song)
    assert pair["edges"] == 1
    assert pair["plays"] == pair["played"] == sent + 120  # 600 CLI plays over 5 songs
    _assert_consistent(driver, db)
    validate = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "data", "validate"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    for name in CONSISTENCY:
        line = next(ln for ln in validate.stdout.splitlines() if name in ln)
        assert "PASS" in line, validate.stdout


def test_two_loaders_of_overlapping_folders(
    base: Path, driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """Two CLI-style loads at once of folders sharing a new user and its songs: the graph of
    the two loaded one after the other."""
    db = neo4j_settings.neo4j_database
    songs = [
        (r["id"], r["artist"])
        for r in _rows(
            driver,
            db,
            "MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS id, a.id AS artist "
            "ORDER BY id LIMIT 4",
        )
    ]
    folders = []
    for n in range(2):
        src = _sessions_folder(tmp_path / f"src{n}", "U_SHARED", songs[n:] + songs[:n], 300)
        # the two files hold different sessions (their times differ by a year)
        text = (src / "synthetic_sessions.csv").read_text().replace("2026-", f"{2024 + n}-")
        (src / "synthetic_sessions.csv").write_text(text)
        folders.append(src)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            ingest(
                "sessions", folders[n], driver=driver, settings=neo4j_settings,
                out_dir=tmp_path / f"work{n}", batch_size=5,
            )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert time.monotonic() - t0 < 300
    for track, _ in songs:
        assert _pair(driver, db, "U_SHARED", track) == {"edges": 1, "plays": 150, "played": 150}
    _assert_consistent(driver, db)
