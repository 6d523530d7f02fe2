"""A CLI ingest killed mid-load with SIGKILL, then run again, gives the graph of a clean load.

Not an exception raised in-process: a real ``spotify-engine ingest`` subprocess is killed with
``kill -9`` while its plays are being written (some sessions committed, not all), so nothing
in the process gets to clean up. Every plays chunk is one transaction (sessions with their
aggregates), entities are MERGEd and the batch is recorded last, so the same command run
again finishes the load exactly (issue 16).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import neo4j
import pytest

from graphdb import apply_schema, wipe_graph
from spotify_engine.settings import Settings

try:
    from tests._graph_dump import dump as _dump
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from _graph_dump import dump as _dump  # type: ignore[no-redef]

pytestmark = pytest.mark.neo4j

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["ingest", "synthetic", "--users", "60", "--songs", "300", "--artists", "30",
           "--days", "20", "--seed", "11", "--batch-size", "25"]  # fmt: skip


def _rows(driver: neo4j.Driver, db: str, text: str) -> list[dict]:
    records, _, _ = driver.execute_query(text, database_=db)
    return [r.data() for r in records]


def _count(driver: neo4j.Driver, db: str, label: str) -> int:
    return _rows(driver, db, f"MATCH (n:{label}) RETURN count(n) AS n")[0]["n"]


def _ingest(tmp_path: Path, out: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "SPOTIFY_ENGINE_HOME": str(tmp_path / "home")}
    return subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", *COMMAND, "--out",
         str(tmp_path / out)],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_kill_9_mid_load_then_run_again_gives_the_clean_graph(
    driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    db = neo4j_settings.neo4j_database
    wipe_graph(driver, db)
    apply_schema(driver, db)
    clean = _ingest(tmp_path, "clean")
    out, _ = clean.communicate(timeout=600)
    assert clean.returncode == 0, out[-2000:]
    want = _dump(driver, db)
    sessions = _count(driver, db, "Session")
    assert sessions > 100

    wipe_graph(driver, db)
    victim = _ingest(tmp_path, "killed")
    deadline = time.monotonic() + 600
    while _count(driver, db, "Session") < sessions // 10:  # some plays chunks committed
        assert victim.poll() is None, "the ingest ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    partial = _count(driver, db, "Session")
    assert 0 < partial < sessions, (partial, sessions)  # killed mid-load
    assert _count(driver, db, "IngestBatch") == 0  # the batch is recorded only at the end

    again = _ingest(tmp_path, "again")
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-2000:]
    assert _dump(driver, db) == want
    assert _count(driver, db, "IngestBatch") == 1
