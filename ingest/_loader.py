"""Load a folder of normalised Parquet tables into Neo4j: batched, idempotent, incremental.

Entities (users, genres, artists, albums, songs, genre memberships, playlists) are MERGEd:
loading them again changes nothing. Plays are loaded as whole sessions, exactly once, in
chunks of whole sessions, each written by two managed transactions:

1. *sessions* (no lock): which of the chunk's sessions already exist; create the others with
   their ``HAD`` and ``PLAYED`` relationships, and one ``IngestPending`` marker listing them.
2. *aggregates* (under the lock, below): delete the marker and add the sessions' sums to
   ``LISTENED`` and ``FOLLOWED_BY``. When the marker is gone, another loader has added them
   already (3.) and this transaction adds nothing.
3. A marker that outlives its loader (stopped between a chunk's two transactions: ``kill -9``,
   a lost connection) is applied at the start of the next plays run, under the lock, from a
   recount of its sessions' ``PLAYED`` (``ingest/apply_pending``); ``data validate`` names
   such sessions meanwhile.

Chunk i's sessions are written (second thread and driver session) while chunk i-1's aggregates
are (this thread), so the two commits overlap on the server: one transaction at a time keeps a
load on one core. A run of one chunk (a play event) writes both steps in one transaction,
without a marker. A failed run can simply be run again; new plays for existing users add to
the aggregates once. Sessions are immutable units: a later file that extends an already loaded
session under the same id does not change it (documented in docs/graph-model.md).

What guards what, with any number of loaders (CLI ingests, API workers taking play events):
- ``Session.id`` is unique (schema): a session is created once. The sessions transaction reads
  which sessions exist without a lock, so two loaders may both create one; the constraint then
  fails one of the two transactions whole, and it runs again without that session
  (``_race_retried``; ``LoadResult.session_races`` counts these).
- The ``IngestLock`` node (``ingest/take_lock``), locked first in every aggregates transaction
  and every entity write, serialises the read-modify-write of the aggregates (two
  ``l.plays = l.plays + $n`` at once can lose one; two fast-path CREATEs would make two
  edges) and makes taking a marker exactly-once. Its ``aggregates`` count moves with every
  transaction that wrote aggregates.
- The CREATE fast path: an aggregate that cannot exist yet is CREATEd instead of MERGEd, which
  skips the relationship scan MERGE needs. A pair is new when its user (song) had no
  ``LISTENED`` (outgoing ``FOLLOWED_BY``) when the run first met it and the run has not created
  the pair since. Those facts are read and learned only under the lock, and a run that finds
  the lock's count moved since its own last aggregates transaction forgets them all.

Speed otherwise (``benchmarks/ingest.py``): users and songs are resolved to internal node ids
once per load, so the write statements match nodes by id instead of seeking an index per row;
rows travel as columns (parallel lists), which Bolt decodes faster than one map per row; and
the next chunk's rows are built in a third thread while the server writes. The two overlapping
transactions write relationships to the same songs and users: on a server with the default
``db.relationship_grouping_threshold`` they deadlock on those nodes' locks (13 to 18 driver
retries per 600k-play load, each a pause), so after the first retry a run locks its nodes in
one order (``ingest/lock_nodes``). The managed local server groups every node's relationships
by type (threshold 1), where they rarely conflict (no retry in the benchmark's loads; one seen
in a test's 80-session load, on a relationship-group lock), and the same step covers that.

The whole folder is also recorded as an ``IngestBatch`` (id = content hash of its tables):
re-running the same batch is answered from that record without touching the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from graphdb import get_registry, graph_errors
from ingest._tables import AUDIO_FEATURES, SCHEMAS, with_name_prefix
from spotify_engine.errors import IngestError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class LoadResult:
    """What a load did: rows per phase, wall time per phase, whether the batch was new."""

    batch_id: str
    skipped: bool = False
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    sessions_new: int = 0
    sessions_existing: int = 0
    relationships: int = 0
    relationships_created: int = 0
    #: Sessions an interrupted load had left without aggregates, completed by this one.
    sessions_recovered: int = 0
    #: Chunks written again because another loader created one of their sessions first.
    session_races: int = 0
    #: A deadlock retried a plays transaction, and the run locked its nodes in order after it.
    nodes_locked_in_order: bool = False

    @property
    def relationships_updated(self) -> int:
        """Relationships written that already existed (aggregates added to, entity links re-set)."""
        return self.relationships - self.relationships_created

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Read every table of a folder (missing files become empty tables)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(f"no such folder of normalised tables: {folder}")
    out: dict[str, pd.DataFrame] = {}
    for name, schema in SCHEMAS.items():
        path = folder / f"{name}.parquet"
        table = pq.read_table(path) if path.exists() else schema.empty_table()
        out[name] = table.to_pandas()
    if out["plays"].empty and out["playlist_tracks"].empty:
        raise IngestError(f"{folder} holds no plays and no playlist tracks: nothing to load")
    return out


def batch_id(folder: Path) -> str:
    """Content hash of the folder's table files: the same data gives the same batch id.

    Hashing the Parquet bytes is fast; a different writer could encode the same rows
    differently, which only costs a reload that changes nothing (sessions load exactly once).
    """
    h = hashlib.sha256()
    for name in SCHEMAS:
        path = Path(folder) / f"{name}.parquet"
        if path.exists():
            h.update(name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:24]


def _none(v: Any) -> Any:
    """pandas/numpy scalars to plain Python, NaN to None (Bolt wants plain values)."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
    return v


def _records(df: pd.DataFrame, cols: list[str]) -> list[dict[str, Any]]:
    sub = df[cols].astype(object).where(df[cols].notna(), None)
    return [dict(zip(cols, map(_none, row), strict=True)) for row in sub.itertuples(index=False)]


def _chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


_ID_BATCH = 50_000
#: Pairs remembered per aggregate type before the run falls back to MERGE for everything.
_TRACK_LIMIT = 20_000_000
#: Times a chunk runs again after another loader created one of its sessions first.
_SESSION_RACES = 10


def _pair(a: int, b: int) -> int:
    """One int for a pair of internal node ids."""
    return (a << 40) | b


@dataclass
class _RunState:
    """Aggregates a plays run has established (see ``Loader._plays``)."""

    users: dict[int, bool] = field(default_factory=dict)
    songs: dict[int, bool] = field(default_factory=dict)
    listened: set[int] = field(default_factory=set)
    transitions: set[int] = field(default_factory=set)
    #: ``IngestLock.aggregates`` after this run's last committed plays transaction.
    version: int | None = None

    def forget(self) -> None:
        """Another loader wrote since this run's last transaction: nothing known still holds."""
        self.users.clear()
        self.songs.clear()
        self.listened.clear()
        self.transitions.clear()

    def learn(
        self, seen: tuple[dict[int, bool], dict[int, bool]], made: dict[str, list[int]]
    ) -> None:
        self.users.update(seen[0])
        self.songs.update(seen[1])
        for nodes, pairs, keys in (
            (self.users, self.listened, made["listened"]),
            (self.songs, self.transitions, made["transitions"]),
        ):
            if len(pairs) + len(keys) > _TRACK_LIMIT:
                # bounded memory: forget, and treat every node met so far as not fresh
                pairs.clear()
                for node in nodes:
                    nodes[node] = False
            else:
                pairs.update(keys)


class Loader:
    """Writes normalised tables to Neo4j through the named statements in ``cypher/ingest``.

    Args:
        driver: an open driver (the caller owns it).
        database: database name.
        batch_size: rows per ``UNWIND`` for entities; plays are chunked by whole sessions
            of about this many plays.
        progress: called as ``progress(phase, done, total)``.
    """

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str = "neo4j",
        *,
        batch_size: int = 10_000,
        progress: Progress | None = None,
    ):
        self.driver = driver
        self.database = database
        self.batch_size = batch_size
        self.progress = progress or (lambda phase, done, total: None)
        self.reg = get_registry()

    # -- helpers ---------------------------------------------------------------------------
    def _write(
        self,
        name: str,
        rows: list[dict[str, Any]],
        phase: str,
        size: int | None = None,
        result: LoadResult | None = None,
    ) -> int:
        total = len(rows)
        done = 0
        text = self.reg.text(name)

        lock = self.reg.text("ingest/take_lock")

        @neo4j.unit_of_work(metadata={"query": name})
        def work(tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]]) -> int:
            tx.run(lock, aggregates=False).consume()
            return tx.run(text, rows=rows).consume().counters.relationships_created

        with graph_errors(), self.driver.session(database=self.database) as session:
            for chunk in _chunks(rows, size or self.batch_size):
                created = session.execute_write(work, chunk)
                if result is not None:
                    result.relationships_created += created
                done += len(chunk)
                self.progress(phase, done, total)
        return total

    def already_applied(self, bid: str) -> bool:
        with graph_errors():
            records, _, _ = self.driver.execute_query(
                self.reg.query("ingest/find_batch"),
                id=bid,
                database_=self.database,
                routing_=neo4j.RoutingControl.READ,
            )
        return bool(records[0]["applied"])

    # -- entities --------------------------------------------------------------------------
    def _entities(self, t: dict[str, pd.DataFrame], result: LoadResult) -> None:
        plays, pl_tracks = t["plays"], t["playlist_tracks"]
        users = t["users"].drop_duplicates("user_id")
        extra_users = set(plays["user_id"].unique()) | set(t["playlists"]["user_id"].dropna())
        extra_users -= set(users["user_id"])
        user_rows = [
            {
                "id": r["user_id"],
                "props": {k: r[k] for k in ("name", "user_type", "activity_level")},
            }
            for r in _records(users, ["user_id", "name", "user_type", "activity_level"])
        ] + [{"id": u, "props": {}} for u in sorted(extra_users)]
        for row in user_rows:
            row["props"] = {k: v for k, v in row["props"].items() if v is not None}

        def simple(df: pd.DataFrame, key: str, props: list[str]) -> list[dict[str, Any]]:
            df = df.drop_duplicates(key)
            return [
                {"id": r[key], "props": {k: r[k] for k in props if r[k] is not None}}
                for r in _records(df, [key, *props])
            ]

        steps: list[tuple[str, str, list[dict[str, Any]]]] = [
            ("ingest/merge_users", "users", user_rows),
            (
                "ingest/merge_genres",
                "genres",
                simple(
                    with_name_prefix(t["genres"]), "genre_id", ["name", "name_prefix", "popularity"]
                ),
            ),
            (
                "ingest/merge_artists",
                "artists",
                simple(
                    with_name_prefix(t["artists"]),
                    "artist_id",
                    ["name", "name_prefix", "popularity"],
                ),
            ),
        ]
        albums = t["albums"].drop_duplicates("album_id")
        steps.append(
            (
                "ingest/merge_albums",
                "albums",
                [
                    {"id": r["album_id"], "name": r["name"], "artist_id": r["artist_id"]}
                    for r in _records(albums, ["album_id", "name", "artist_id"])
                ],
            )
        )
        songs = with_name_prefix(t["songs"].drop_duplicates("song_id"))
        props = ["name", "name_prefix", "duration_ms", "popularity", *AUDIO_FEATURES]
        song_rows = [
            {
                "id": r["song_id"],
                "artist_id": r["artist_id"],
                "album_id": r["album_id"],
                "props": {k: r[k] for k in props if r[k] is not None},
            }
            for r in _records(songs, ["song_id", "artist_id", "album_id", *props])
        ]
        referenced = set(plays["song_id"].unique()) | set(pl_tracks["song_id"].unique())
        missing = sorted(referenced - set(songs["song_id"]))
        song_rows += [{"id": s, "artist_id": None, "album_id": None, "props": {}} for s in missing]
        steps.append(("ingest/merge_songs", "songs", song_rows))
        steps.append(
            (
                "ingest/merge_song_genres",
                "song_genres",
                _records(t["song_genres"], ["song_id", "genre_id", "weight"]),
            )
        )
        steps.append(
            (
                "ingest/merge_artist_genres",
                "artist_genres",
                _records(t["artist_genres"], ["artist_id", "genre_id", "weight"]),
            )
        )
        for name, phase, rows in steps:
            t0 = time.perf_counter()
            result.rows[phase] = self._write(name, rows, phase, result=result)
            result.seconds[phase] = time.perf_counter() - t0
        result.relationships += (
            len(songs["artist_id"].dropna())
            + len(songs["album_id"].dropna())
            + len(albums["artist_id"].dropna())
            + len(t["song_genres"])
            + len(t["artist_genres"])
        )

    # -- plays -----------------------------------------------------------------------------
    def _session_chunks(self, plays: pd.DataFrame) -> Iterator[pd.DataFrame]:
        """Whole sessions, about ``batch_size`` plays per chunk."""
        plays = plays.sort_values(["session_id", "pos"], kind="stable").reset_index(drop=True)
        if plays.empty:
            return
        starts = np.flatnonzero(plays["session_id"].ne(plays["session_id"].shift()).to_numpy())
        bounds = list(starts) + [len(plays)]
        i = 0
        while i < len(starts):
            j = i
            while j < len(starts) and bounds[j + 1] - bounds[i] <= self.batch_size:
                j += 1
            j = max(j, i + 1)
            yield plays.iloc[bounds[i] : bounds[j]]
            i = j

    @staticmethod
    def _session_rows(chunk: pd.DataFrame) -> dict[str, list[Any]]:
        """The chunk's sessions as columns, one entry per session, its plays as lists in play
        order (chunk sorted by session, pos); users and songs as internal node ids (columns
        ``unid``, ``snid``)."""
        sid = chunk["session_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
        bounds = list(zip(starts.tolist(), np.r_[starts[1:], len(sid)].tolist(), strict=True))
        ts = chunk["ts"].to_numpy(dtype=np.int64)
        ms_raw = chunk["ms_played"].to_numpy(dtype=np.float64)
        known = ~np.isnan(ms_raw)
        ms = np.where(known, ms_raw, 0).astype(np.int64)
        ms_l = [int(v) if k else None for v, k in zip(ms.tolist(), known.tolist(), strict=True)]

        def split(values: list[Any]) -> list[list[Any]]:
            return [values[a:b] for a, b in bounds]

        return {
            "id": sid[starts].tolist(),
            "user": chunk["unid"].to_numpy(dtype=np.int64)[starts].tolist(),
            "start": np.minimum.reduceat(ts, starts).tolist(),
            "end": np.maximum.reduceat(ts + ms, starts).tolist(),
            "songs": split(chunk["snid"].to_numpy(dtype=np.int64).tolist()),
            "pos": split(chunk["pos"].to_numpy(dtype=np.int64).tolist()),
            "at": split(ts.tolist()),
            "ms": split(ms_l),
            "skipped": split(chunk["skipped"].to_numpy(dtype=bool).tolist()),
        }

    @staticmethod
    def _aggregates(chunk: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per-chunk sums for ``LISTENED`` and ``FOLLOWED_BY`` as columns (internal node ids),
        sorted by their node ids; ``ms_played`` is ``None`` where no play of the pair knew it."""
        g = chunk.groupby(["unid", "snid"], sort=True)
        agg = g.agg(
            plays=("ts", "size"),
            ms_played=("ms_played", "sum"),
            ms_known=("ms_played", "count"),
            skips=("skipped", "sum"),
            first_at=("ts", "min"),
            last_at=("ts", "max"),
        )
        ms = agg["ms_played"].to_numpy(dtype=np.float64).astype(np.int64).astype(object)
        ms[agg["ms_known"].to_numpy() == 0] = None
        listened = {
            "user": agg.index.get_level_values(0).to_numpy(dtype=np.int64),
            "song": agg.index.get_level_values(1).to_numpy(dtype=np.int64),
            "plays": agg["plays"].to_numpy(dtype=np.int64),
            "ms_played": ms,
            "skips": agg["skips"].to_numpy(dtype=np.int64),
            "first_at": agg["first_at"].to_numpy(dtype=np.int64),
            "last_at": agg["last_at"].to_numpy(dtype=np.int64),
        }
        song = chunk["snid"].to_numpy(dtype=np.int64)
        session = chunk["session_id"].to_numpy()
        same = session[1:] == session[:-1]
        pairs = pd.DataFrame({"a": song[:-1][same], "b": song[1:][same]})
        counts = pairs.groupby(["a", "b"], sort=True).size()
        transitions = {
            "a": counts.index.get_level_values(0).to_numpy(dtype=np.int64),
            "b": counts.index.get_level_values(1).to_numpy(dtype=np.int64),
            "count": counts.to_numpy(dtype=np.int64),
        }
        return listened, transitions

    def _node_ids(self, plays: pd.DataFrame) -> pd.DataFrame:
        """``plays`` with the internal ids of its users (``unid``) and songs (``snid``), looked
        up once here so that the write statements match nodes by id. Every user and song must
        already be in the graph (the entities are loaded first)."""
        users = plays["user_id"].unique().tolist()
        songs = plays["song_id"].unique().tolist()
        q = self.reg.text("ingest/find_node_ids")
        umap: dict[Any, int] = {}
        smap: dict[Any, int] = {}
        with graph_errors(), self.driver.session(database=self.database) as session:
            for i in range(0, max(len(users), len(songs)), _ID_BATCH):
                rec = session.execute_read(
                    lambda tx, i=i: tx.run(
                        q, user_ids=users[i : i + _ID_BATCH], song_ids=songs[i : i + _ID_BATCH]
                    ).single(strict=True)
                )
                umap.update(zip(rec["user_keys"], rec["user_nids"], strict=True))
                smap.update(zip(rec["song_keys"], rec["song_nids"], strict=True))
        for kind, keys, found in (("users", users, umap), ("songs", songs, smap)):
            if len(found) < len(keys):
                lost = [k for k in keys if k not in found]
                raise IngestError(
                    f"{len(lost)} {kind} of the plays are not in the graph (e.g. {lost[0]!r}); "
                    "load their entities first"
                )
        return plays.assign(
            unid=plays["user_id"].map(umap).astype(np.int64),
            snid=plays["song_id"].map(smap).astype(np.int64),
        )

    def _plays(self, plays: pd.DataFrame, result: LoadResult) -> None:
        total = len(plays)
        t0 = time.perf_counter()
        plays = self._node_ids(plays)
        self._apply_pending(result)
        chunks = list(self._session_chunks(plays))
        writer = _PlaysWriter(self.reg, result)
        done = 0

        def finished(rows: int) -> None:
            nonlocal done
            done += rows
            self.progress("plays", done, total)

        with contextlib.ExitStack() as stack:
            stack.enter_context(graph_errors())
            session = stack.enter_context(self.driver.session(database=self.database))
            # The rows of the next chunk are built in a second thread while the server
            # writes the current one (the driver releases the GIL while it waits).
            rows_pool = stack.enter_context(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-rows")
            )
            ahead = [rows_pool.submit(_prepare, c) for c in chunks[:1]]
            if len(chunks) == 1:
                # one chunk (a play event): sessions and aggregates in one transaction
                writer.whole(session, ahead[0].result())
                finished(len(chunks[0]))
            else:
                # Several: chunk i's sessions are written (second driver session, third
                # thread) while chunk i-1's aggregates are, under the lock (this thread).
                s_session = stack.enter_context(self.driver.session(database=self.database))
                s_pool = stack.enter_context(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-sessions")
                )
                waiting: Future[_Written] | None = None
                for i in range(len(chunks)):
                    prepared = ahead.pop().result()
                    if i + 1 < len(chunks):
                        ahead.append(rows_pool.submit(_prepare, chunks[i + 1]))
                    written = s_pool.submit(writer.sessions, s_session, prepared)
                    if waiting is not None:
                        finished(writer.aggregates(session, waiting.result()))
                    waiting = written
                if waiting is not None:
                    finished(writer.aggregates(session, waiting.result()))
        result.rows["plays"] = total
        result.seconds["plays"] = time.perf_counter() - t0

    def _apply_pending(self, result: LoadResult) -> None:
        """Add the aggregates of sessions whose loader stopped between a chunk's two
        transactions (``ingest/create_pending``), recounted from the graph, each under the
        lock; a marker its own loader takes first is skipped there."""
        q_find = self.reg.query("ingest/find_pending")
        q_lock = self.reg.text("ingest/take_lock")
        q_apply = self.reg.text("ingest/apply_pending")

        @neo4j.unit_of_work(metadata={"query": "ingest/apply_pending"})
        def apply(tx: neo4j.ManagedTransaction, marker: str) -> tuple[int, int, int]:
            tx.run(q_lock, aggregates=True).consume()
            res = tx.run(q_apply, id=marker)
            row = res.single()
            created = res.consume().counters.relationships_created
            if row is None:
                return 0, 0, 0
            return row["sessions"], row["listened"] + row["transitions"], created

        with graph_errors():
            records, _, _ = self.driver.execute_query(
                q_find, database_=self.database, routing_=neo4j.RoutingControl.READ
            )
            if not records:
                return
            with self.driver.session(database=self.database) as session:
                for rec in records:
                    sessions, rels, created = session.execute_write(apply, rec["id"])
                    if sessions:
                        log.warning(
                            "added the aggregates of %d sessions an interrupted load left "
                            "without them (marker %s)",
                            sessions,
                            rec["id"],
                        )
                    result.sessions_recovered += sessions
                    result.relationships += rels
                    result.relationships_created += created

    def _playlists(self, t: dict[str, pd.DataFrame], result: LoadResult) -> None:
        tracks = t["playlist_tracks"].sort_values(["playlist_id", "pos"], kind="stable")
        meta = t["playlists"].drop_duplicates("playlist_id").set_index("playlist_id")
        ids = sorted(set(meta.index) | set(tracks["playlist_id"].unique()))
        grouped = {pid: g for pid, g in tracks.groupby("playlist_id", sort=False)}
        rows = []
        for pid in ids:
            g = grouped.get(pid)
            m = meta.loc[pid] if pid in meta.index else None
            props = {}
            owner = None
            if m is not None:
                props = {
                    k: _none(m[k])
                    for k in ("name", "modified_at", "num_followers")
                    if _none(m[k]) is not None
                }
                owner = _none(m["user_id"])
            rows.append(
                {
                    "id": pid,
                    "user_id": owner,
                    "props": props,
                    "songs": [] if g is None else g["song_id"].tolist(),
                    "pos": [] if g is None else g["pos"].astype(int).tolist(),
                }
            )
        t0 = time.perf_counter()
        # Chunk by playlists, keeping about batch_size tracks per transaction.
        per = max(
            1, self.batch_size // max(1, int(np.mean([len(r["songs"]) for r in rows] or [1])))
        )
        self._write("ingest/replace_playlists", rows, "playlists", size=per, result=result)
        result.rows["playlists"] = len(rows)
        result.rows["playlist_tracks"] = len(tracks)
        result.relationships += len(tracks) + sum(1 for r in rows if r["user_id"])
        result.seconds["playlists"] = time.perf_counter() - t0

    # -- entry points ----------------------------------------------------------------------
    def load_plays(self, plays: pd.DataFrame, *, new_users: list[str] | None = None) -> LoadResult:
        """Load a plays table (the ``plays`` schema) exactly once per session id, without a
        batch record: what the API's play events use. ``new_users`` are MERGEd first; the
        songs must already exist (the caller checks)."""
        result = LoadResult(batch_id="")
        if new_users:
            rows = [{"id": u, "props": {}} for u in new_users]
            result.rows["users"] = self._write("ingest/merge_users", rows, "users")
        if not plays.empty:
            self._plays(plays, result)
        return result

    def load(self, folder: Path, *, source: str = "tables", force: bool = False) -> LoadResult:
        """Load a folder written by a reader; a batch already applied is skipped unless forced."""
        bid = batch_id(folder)
        result = LoadResult(batch_id=bid)
        if not force and self.already_applied(bid):
            result.skipped = True
            return result
        t = read_tables(folder)
        self._entities(t, result)
        if not t["plays"].empty:
            self._plays(t["plays"], result)
        if not t["playlist_tracks"].empty or not t["playlists"].empty:
            self._playlists(t, result)
        with graph_errors():
            self.driver.execute_query(
                self.reg.query("ingest/record_batch"),
                id=bid,
                props={
                    "source": source,
                    "folder": str(folder),
                    "loaded_at": int(time.time() * 1000),
                    "plays": int(len(t["plays"])),
                    "sessions_new": result.sessions_new,
                    "playlist_tracks": int(len(t["playlist_tracks"])),
                },
                database_=self.database,
            )
        return result


def _prepare(chunk: pd.DataFrame) -> tuple[Any, ...]:
    """A chunk with its sessions as columns and its aggregates (``Loader._session_rows``,
    ``Loader._aggregates``)."""
    return (chunk, Loader._session_rows(chunk), *Loader._aggregates(chunk))


@dataclass
class _Written:
    """A chunk's first transaction, committed: its new sessions (None: it had none) and the
    marker that waits for their aggregates."""

    rows: int
    prepared: tuple[Any, ...] | None
    marker: str | None
    existing: int
    created: int
    races: int = 0


class _PlaysWriter:
    """The transactions of one plays run (see ``Loader._plays`` and the module docstring).

    ``sessions`` writes a chunk's new sessions with their plays and a marker, without the
    lock; ``aggregates`` then takes the lock, the marker, and adds the chunk's ``LISTENED``
    and ``FOLLOWED_BY``; ``whole`` does both in one transaction. Facts about fresh users and
    songs (``_RunState``) are read and learned only here, in the thread that takes the lock.
    """

    def __init__(self, reg: Any, result: LoadResult):
        self.result = result
        self.run = _RunState()
        #: Lock the nodes each transaction writes to in ascending order (``ingest/lock_nodes``):
        #: set once a deadlock retried one of this run's transactions.
        self.ordered = False
        self.q = {
            name: reg.text(f"ingest/{name}")
            for name in (
                "find_sessions", "create_sessions", "create_pending", "delete_pending",
                "take_lock", "find_fresh", "add_listened", "add_transitions",
                "create_listened", "create_transitions", "lock_nodes",
            )
        }  # fmt: skip

    # -- statements inside a transaction ----------------------------------------------------
    def _lock_nodes(self, tx: neo4j.ManagedTransaction, *nids: np.ndarray) -> None:
        """After a deadlock: take the write locks of these nodes in ascending id order.

        A chunk's sessions transaction and the previous chunk's aggregates transaction run at
        once and write relationships to the same songs and users. Where the server keeps the
        relationships of a node with few of them in one chain (its
        ``db.relationship_grouping_threshold``, 50 by default), both lock those nodes, one
        while its statements run and the other as it commits, each in its own order, and
        the server resolves the cycle by failing one (retried by the driver, after a pause).
        Locked in one order first, they wait for each other instead. The managed local server
        groups every node's relationships by type (threshold 1), which makes the conflict rare
        (not impossible), so a run takes this step only once a retry shows it is needed."""
        if self.ordered:
            tx.run(self.q["lock_nodes"], nids=np.unique(np.concatenate(nids)).tolist()).consume()

    def _retried(self, attempts: int) -> None:
        """A transaction ran ``attempts`` times for a transient failure (a deadlock)."""
        if attempts > 1 and not self.ordered:
            self.ordered = self.result.nodes_locked_in_order = True
            log.info("a deadlock retried a plays transaction: locking nodes in order from now on")

    def _lock(self, tx: neo4j.ManagedTransaction) -> int:
        """Take the lock; returns the count this transaction commits as. From here on no other
        loader writes aggregates until this one ends."""
        before = tx.run(self.q["take_lock"], aggregates=True).single(strict=True)["aggregates"]
        before -= 1
        if self.run.version is not None and before != self.run.version:
            self.run.forget()  # another loader wrote aggregates since this run's last commit
        return before + 1

    def _write_sessions(
        self, tx: neo4j.ManagedTransaction, prepared: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...] | None, int, int]:
        """Create the chunk's sessions that are not in the graph yet; returns the chunk
        reduced to them (None: none left), how many existed, relationships created."""
        chunk = prepared[0]
        ids = chunk["session_id"].unique().tolist()
        existing = set(tx.run(self.q["find_sessions"], ids=ids).single(strict=True)["existing"])
        if existing:
            chunk = chunk[~chunk["session_id"].isin(existing)]
            if chunk.empty:
                return None, len(existing), 0
            prepared = _prepare(chunk)
        sessions = prepared[1]
        created = tx.run(self.q["create_sessions"], **sessions).consume()
        self._lock_nodes(tx, prepared[0]["unid"].to_numpy(), prepared[0]["snid"].to_numpy())
        return prepared, len(existing), created.counters.relationships_created

    def _add_aggregates(
        self, tx: neo4j.ManagedTransaction, prepared: tuple[Any, ...]
    ) -> tuple[int, int, Any]:
        """Add the chunk's aggregates (the lock held): CREATE the pairs that cannot exist yet,
        MERGE the others. Returns relationships written, created, and what to learn."""
        _, _, listened, transitions = prepared
        q, run = self.q, self.run
        self._lock_nodes(tx, listened["user"], listened["song"], transitions["a"], transitions["b"])
        new_users = sorted(set(listened["user"].tolist()) - run.users.keys())
        new_songs = sorted(set(transitions["a"].tolist()) - run.songs.keys())
        fresh_u: set[int] = set()
        fresh_s: set[int] = set()
        if new_users or new_songs:
            fresh = tx.run(q["find_fresh"], users=new_users, songs=new_songs).single(strict=True)
            fresh_u, fresh_s = set(fresh["users"]), set(fresh["songs"])
        created = 0
        made: dict[str, list[int]] = {}
        for kind, cols, q_create, q_merge, (k1, k2), fresh_now, known, pairs in (
            ("listened", listened, q["create_listened"], q["add_listened"], ("user", "song"),
             fresh_u, run.users, run.listened),
            ("transitions", transitions, q["create_transitions"], q["add_transitions"],
             ("a", "b"), fresh_s, run.songs, run.transitions),
        ):  # fmt: skip
            keys = [_pair(a, b) for a, b in zip(cols[k1].tolist(), cols[k2].tolist(), strict=True)]
            new = np.fromiter(
                (
                    known.get(node, node in fresh_now) and key not in pairs
                    for node, key in zip(cols[k1].tolist(), keys, strict=True)
                ),
                dtype=bool,
                count=len(keys),
            )
            made[kind] = [k for k, n in zip(keys, new.tolist(), strict=True) if n]
            for text, mask in ((q_create, new), (q_merge, ~new)):
                if mask.any():
                    part = {k: v[mask].tolist() for k, v in cols.items()}
                    created += tx.run(text, **part).consume().counters.relationships_created
        seen = ({u: u in fresh_u for u in new_users}, {s: s in fresh_s for s in new_songs})
        return len(listened["user"]) + len(transitions["a"]), created, (seen, made)

    # -- transactions ------------------------------------------------------------------------
    def sessions(self, session: neo4j.Session, prepared: tuple[Any, ...]) -> _Written:
        """A chunk's first transaction (no lock): its new sessions, their plays, a marker."""

        attempts = 0

        @neo4j.unit_of_work(metadata={"query": "ingest/create_sessions"})
        def work(tx: neo4j.ManagedTransaction) -> _Written:
            nonlocal attempts
            attempts += 1
            kept, existing, created = self._write_sessions(tx, prepared)
            marker = None
            if kept is not None:
                marker = uuid.uuid4().hex
                ids = kept[1]["id"]
                tx.run(self.q["create_pending"], id=marker, sessions=ids).consume()
            return _Written(len(prepared[0]), kept, marker, existing, created)

        written, races = _race_retried(session, work)
        written.races = races
        self._retried(attempts - races)
        return written

    def aggregates(self, session: neo4j.Session, written: _Written) -> int:
        """A chunk's second transaction (the lock): its marker and its aggregates. Accounts
        for both transactions; returns the chunk's rows."""
        res = self.result
        res.sessions_existing += written.existing
        res.relationships_created += written.created
        res.session_races += written.races
        if written.prepared is None or written.marker is None:
            return written.rows
        prepared, marker = written.prepared, written.marker
        res.sessions_new += len(prepared[1]["id"])
        res.relationships += len(prepared[1]["id"]) + len(prepared[0])

        attempts = 0

        @neo4j.unit_of_work(metadata={"query": "ingest/add_listened"})
        def work(tx: neo4j.ManagedTransaction) -> tuple[int, Any]:
            nonlocal attempts
            attempts += 1
            version = self._lock(tx)
            if not tx.run(self.q["delete_pending"], id=marker).single(strict=True)["deleted"]:
                return version, None  # another loader added them (ingest/apply_pending)
            return version, self._add_aggregates(tx, prepared)

        version, out = session.execute_write(work)
        self._retried(attempts)
        self._committed(version, out)
        return written.rows

    def whole(self, session: neo4j.Session, prepared: tuple[Any, ...]) -> None:
        """One chunk in one transaction: the lock, its new sessions and their aggregates."""

        @neo4j.unit_of_work(metadata={"query": "ingest/create_sessions"})
        def work(tx: neo4j.ManagedTransaction) -> tuple[Any, ...]:
            version = self._lock(tx)
            kept, existing, created = self._write_sessions(tx, prepared)
            out = None if kept is None else self._add_aggregates(tx, kept)
            return version, kept, existing, created, out

        (version, kept, existing, created, out), races = _race_retried(session, work)
        res = self.result
        res.session_races += races
        res.sessions_existing += existing
        res.relationships_created += created
        if kept is not None:
            res.sessions_new += len(kept[1]["id"])
            res.relationships += len(kept[1]["id"]) + len(kept[0])
        self._committed(version, out)

    def _committed(self, version: int, out: tuple[int, int, Any] | None) -> None:
        self.run.version = version
        if out is not None:
            rels, created, learned = out
            self.run.learn(*learned)
            self.result.relationships += rels
            self.result.relationships_created += created


def _race_retried(session: neo4j.Session, work: Callable[..., Any]) -> tuple[Any, int]:
    """``session.execute_write(work)`` and the number of session races it took: the
    transaction runs again when another loader created one of the chunk's sessions first (the
    unique constraint on ``Session.id`` failed it whole; the next attempt finds that session
    and leaves it out)."""
    for attempt in range(_SESSION_RACES + 1):
        try:
            return session.execute_write(work), attempt
        except neo4j.exceptions.ConstraintError as exc:
            if "Session" not in str(exc.message) or attempt == _SESSION_RACES:
                raise
            log.info("another loader created a session of this chunk first; running it again")
    raise AssertionError("unreachable")
