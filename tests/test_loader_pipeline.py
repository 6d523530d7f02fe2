"""The plays loader's two transactions per chunk, with other loaders writing at once (issue 16).

A run of several chunks writes chunk i's sessions (no lock) while chunk i-1's aggregates are
written under the ``IngestLock``; a marker (``IngestPending``) holds the sessions whose
aggregates are not in yet. These tests check what that overlap must not change: two such
loaders on the same users, songs and sessions give exactly the graph of one serial load; a
session created by another loader mid-transaction (the unique constraint fails the chunk) is
written again without it; and sessions left without aggregates, by a load stopped between a
chunk's two transactions, are completed by the next load, whatever its size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pandas as pd
import pytest

from graphdb import apply_schema, get_registry, wipe_graph
from ingest import Loader, LoadResult, ingest, validate_graph
from spotify_engine.settings import Settings

try:
    from tests._graph_dump import dump as _dump
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    from _graph_dump import dump as _dump  # type: ignore[no-redef]

pytestmark = pytest.mark.neo4j

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "sessions"
PENDING = "no sessions wait for aggregates"


def _rows(driver: neo4j.Driver, db: str, text: str, **params: Any) -> list[dict]:
    records, _, _ = driver.execute_query(text, params, database_=db)
    return [r.data() for r in records]


def _base(driver: neo4j.Driver, settings: Settings, out: Path) -> None:
    """An empty graph with the example folder's users, songs and plays."""
    db = settings.neo4j_database
    wipe_graph(driver, db)
    apply_schema(driver, db)
    ingest("sessions", EXAMPLE, driver=driver, settings=settings, out_dir=out, force=True)


def _plays(driver: neo4j.Driver, db: str, prefix: str, sessions: int, seed: int) -> pd.DataFrame:
    """``sessions`` sessions of 1-6 plays each over the graph's users and songs (a song may
    repeat within a session), some with unknown ``ms_played``."""
    users = [r["id"] for r in _rows(driver, db, "MATCH (u:User) RETURN u.id AS id ORDER BY id")]
    songs = [r["id"] for r in _rows(driver, db, "MATCH (s:Song) RETURN s.id AS id ORDER BY id")]
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(sessions):
        user = users[rng.integers(len(users))]
        t = 1_800_000_000_000 + k * 3_600_000
        for pos in range(int(rng.integers(1, 7))):
            rows.append(
                {
                    "user_id": user,
                    "song_id": songs[rng.integers(40)],  # few songs: many shared pairs
                    "session_id": f"{prefix}:{k}",
                    "pos": pos,
                    "ts": t + pos * 200_000,
                    "ms_played": float("nan")
                    if rng.random() < 0.2
                    else float(rng.integers(100_000)),
                    "skipped": bool(rng.random() < 0.3),
                }
            )
    df = pd.DataFrame(rows)
    return df.astype({"pos": "int32", "ts": "int64", "ms_played": "float64", "skipped": "bool"})


def _assert_consistent(driver: neo4j.Driver, db: str) -> None:
    duplicates = _rows(
        driver,
        db,
        "MATCH (a)-[r:LISTENED|FOLLOWED_BY]->(b) WITH a, b, type(r) AS t, count(r) AS n "
        "WHERE n > 1 RETURN a.id AS a, t, b.id AS b, n LIMIT 5",
    )
    assert duplicates == []
    checks = {c.name: c for c in validate_graph(driver, db)}
    for name in (
        "LISTENED.plays = PLAYED count",
        "FOLLOWED_BY.count = consecutive plays",
        "session positions are 0..n-1",
        "no orphan sessions",
        PENDING,
    ):
        assert checks[name].status == "PASS", (name, checks[name].detail)


class _Hooked:
    """A driver whose write transactions of one name call ``hook`` after their statements,
    before the commit (to hold a transaction open, or to stop a load between two), or with
    ``before``, ahead of their statements."""

    def __init__(
        self,
        driver: neo4j.Driver,
        query: str,
        hook: Callable[[], None],
        *,
        before: bool = False,
    ):
        self._driver, self._query, self._hook, self._before = driver, query, hook, before

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def session(self, **kwargs: Any) -> _HookedSession:
        return _HookedSession(self, self._driver.session(**kwargs))


class _HookedSession:
    def __init__(self, owner: _Hooked, session: neo4j.Session):
        self._owner, self._session = owner, session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def __enter__(self) -> _HookedSession:
        self._session.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.__exit__(*exc)

    def execute_write(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        meta = getattr(work, "metadata", None) or {}
        if meta.get("query") != self._owner._query:
            return self._session.execute_write(work, *args, **kwargs)

        def hooked(tx: neo4j.ManagedTransaction, *a: Any, **k: Any) -> Any:
            if self._owner._before:
                self._owner._hook()
            out = work(tx, *a, **k)
            if not self._owner._before:
                self._owner._hook()
            return out

        hooked.metadata = meta
        return self._session.execute_write(hooked, *args, **kwargs)


@pytest.fixture
def db(driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path) -> Iterator[str]:
    _base(driver, neo4j_settings, tmp_path / "base")
    yield neo4j_settings.neo4j_database


def test_two_pipelined_loaders_give_the_graph_of_a_serial_load(
    db: str, driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """Two runs of many small chunks at once, sharing users, songs and half their sessions:
    every session once, and every node and relationship as when they load one after the
    other (aggregates, fast-path CREATEs and MERGEs included)."""
    mine = _plays(driver, db, "p", 240, seed=1)
    theirs = pd.concat(
        [mine[mine["session_id"].isin({f"p:{k}" for k in range(0, 240, 2)})],
         _plays(driver, db, "q", 120, seed=2)]
    )  # fmt: skip
    start = threading.Barrier(2)
    results: list[LoadResult] = []
    errors: list[BaseException] = []

    def load(table: pd.DataFrame) -> None:
        try:
            start.wait()
            results.append(Loader(driver, db, batch_size=9).load_plays(table))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(t,)) for t in (mine, theirs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert sum(r.sessions_new for r in results) == 360
    assert sum(r.sessions_existing for r in results) == 120
    _assert_consistent(driver, db)
    together = _dump(driver, db)

    _base(driver, neo4j_settings, tmp_path / "serial")
    for table in (mine, theirs):
        Loader(driver, db, batch_size=9).load_plays(table)
    assert together == _dump(driver, db)


@pytest.mark.parametrize("chunks", ["one", "several"])
def test_a_session_created_by_another_loader_meanwhile_is_left_out(
    db: str, driver: neo4j.Driver, chunks: str
) -> None:
    """A run whose sessions transaction is held open (its sessions created, not committed);
    another run writes some of the same sessions and blocks on the unique constraint; when
    the first commits, the second's transaction fails whole and runs again without them."""
    first = _plays(driver, db, "r", 60, seed=3)
    # r:0 and r:1 sort first: they are in the first run's first chunk
    shared = first[first["session_id"].isin({"r:0", "r:1"})]
    second = pd.concat([shared, _plays(driver, db, "s", 30 if chunks == "several" else 1, 4)])
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        if not held.is_set():
            held.set()
            assert release.wait(120)

    out: dict[str, LoadResult] = {}

    def load(name: str, loader: Loader, table: pd.DataFrame) -> None:
        out[name] = loader.load_plays(table)

    hooked = _Hooked(driver, "ingest/create_sessions", hold)
    one = threading.Thread(target=load, args=("first", Loader(hooked, db, batch_size=20), first))
    one.start()
    assert held.wait(60)  # the first chunk's sessions (r:0..) are created, not committed
    size = 20 if chunks == "several" else 10_000
    two = threading.Thread(
        target=load, args=("second", Loader(driver, db, batch_size=size), second)
    )
    two.start()
    deadline = time.monotonic() + 60
    while not _rows(
        driver,
        db,
        "SHOW TRANSACTIONS YIELD status WHERE status STARTS WITH 'Blocked' RETURN status",
    ):
        assert time.monotonic() < deadline, "the second run never waited for the first"
        time.sleep(0.05)
    release.set()
    one.join(timeout=120)
    two.join(timeout=120)
    assert set(out) == {"first", "second"}
    assert out["second"].session_races >= 1
    assert out["first"].sessions_new == 60
    assert out["second"].sessions_existing == 2
    assert out["second"].sessions_new == second["session_id"].nunique() - 2
    _assert_consistent(driver, db)


def test_sessions_left_without_aggregates_are_completed_by_the_next_load(
    db: str, driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """A load stopped after a chunk's sessions committed and before its aggregates did (here an
    error in its second transaction; tests/test_crash_safety.py kills a real process): data
    validate names the waiting sessions, and the next load, even one play event, adds their
    aggregates once; loading the rest then gives the graph of a clean load."""
    table = _plays(driver, db, "t", 80, seed=5)
    event = _plays(driver, db, "e", 1, seed=6)

    def stop() -> None:
        raise RuntimeError("stopped between the two transactions")

    with pytest.raises(RuntimeError, match="stopped between"):
        Loader(_Hooked(driver, "ingest/add_listened", stop), db, batch_size=20).load_plays(table)
    waiting = _rows(driver, db, "MATCH (p:IngestPending) RETURN sum(size(p.sessions)) AS n")[0]["n"]
    assert waiting and waiting > 0
    checks = {c.name: c for c in validate_graph(driver, db)}
    assert checks[PENDING].status == "FAIL" and checks[PENDING].value == waiting
    assert checks["LISTENED.plays = PLAYED count"].status == "FAIL"

    res = Loader(driver, db).load_plays(event)
    assert res.sessions_recovered == waiting
    assert res.sessions_new == 1
    _assert_consistent(driver, db)
    res = Loader(driver, db, batch_size=20).load_plays(table)
    assert res.sessions_existing == waiting and res.sessions_recovered == 0
    _assert_consistent(driver, db)
    recovered = _dump(driver, db)

    _base(driver, neo4j_settings, tmp_path / "clean")
    Loader(driver, db, batch_size=20).load_plays(table)
    Loader(driver, db).load_plays(event)
    assert recovered == _dump(driver, db)


def test_a_marker_applied_by_another_load_is_not_applied_again(
    db: str, driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """A run's first chunk has its sessions committed and its aggregates not begun when another
    load starts and applies the waiting marker itself: the run finds the marker gone and
    skips those aggregates (else they would count twice)."""
    table = _plays(driver, db, "m", 50, seed=7)
    event = _plays(driver, db, "n", 1, seed=8)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        if not held.is_set():
            held.set()
            assert release.wait(120)

    out: dict[str, LoadResult] = {}

    def run() -> None:
        hooked = _Hooked(driver, "ingest/add_listened", hold, before=True)
        out["run"] = Loader(hooked, db, batch_size=20).load_plays(table)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(60)  # chunk 0's sessions and marker committed; its aggregates not begun
    other = Loader(driver, db).load_plays(event)
    release.set()
    thread.join(timeout=120)
    assert other.sessions_recovered > 0
    assert out["run"].sessions_new == 50
    _assert_consistent(driver, db)
    together = _dump(driver, db)

    _base(driver, neo4j_settings, tmp_path / "serial")
    Loader(driver, db, batch_size=20).load_plays(table)
    Loader(driver, db).load_plays(event)
    assert together == _dump(driver, db)


def test_a_retried_plays_transaction_makes_the_run_lock_nodes_in_order(
    db: str, driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """A transient failure (as a deadlock between a chunk's sessions and the previous chunk's
    aggregates) retries the transaction; from then on the run locks the nodes of every plays
    transaction in ascending order (``ingest/lock_nodes``), and the graph is that of a load
    without it (one chunk, one transaction): no lock property left behind, aggregates exact."""
    table = _plays(driver, db, "d", 80, seed=9)
    failed: list[bool] = []

    def fail_once() -> None:
        if not failed:
            failed.append(True)
            raise neo4j.exceptions.ServiceUnavailable("as a deadlock, once")

    hooked = _Hooked(driver, "ingest/add_listened", fail_once)  # its statements ran
    res = Loader(hooked, db, batch_size=20).load_plays(table)
    assert failed and res.nodes_locked_in_order
    assert res.sessions_new == 80
    _assert_consistent(driver, db)
    assert _rows(driver, db, "MATCH (n) WHERE n.ingest_lock IS NOT NULL RETURN n LIMIT 1") == []
    ordered = _dump(driver, db)

    # The reference load is one chunk, one transaction: nothing of its own overlaps it, so it
    # cannot deadlock (a load of several chunks can, rarely, even on the managed server).
    _base(driver, neo4j_settings, tmp_path / "clean")
    clean = Loader(driver, db, batch_size=len(table)).load_plays(table)
    assert not clean.nodes_locked_in_order
    assert ordered == _dump(driver, db)


def test_lock_nodes_takes_each_nodes_write_lock_and_changes_nothing(
    db: str, driver: neo4j.Driver
) -> None:
    """``ingest/lock_nodes`` holds the write lock of every node it is given until its
    transaction ends (a second writer times out waiting), and leaves the nodes as they were."""
    lock = get_registry().text("ingest/lock_nodes")
    nids = [r["n"] for r in _rows(driver, db, "MATCH (s:Song) RETURN id(s) AS n ORDER BY n")]
    before = _dump(driver, db)
    with driver.session(database=db) as first, driver.session(database=db) as second:
        tx = first.begin_transaction()
        tx.run(lock, nids=nids[:3]).consume()
        waiting = second.begin_transaction(timeout=2)
        with pytest.raises(neo4j.exceptions.Neo4jError):
            waiting.run(lock, nids=[nids[1]]).consume()
        waiting.close()
        free = second.begin_transaction(timeout=5)
        free.run(lock, nids=[nids[3]]).consume()  # a node the first did not lock
        free.commit()
        tx.commit()
    assert before == _dump(driver, db)
