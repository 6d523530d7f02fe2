"""Load a folder of normalised Parquet tables into Neo4j: batched, idempotent, incremental.

Entities (users, genres, artists, albums, songs, genre memberships, playlists) are MERGEd:
loading them again changes nothing. Plays are loaded as whole sessions, exactly once: each
chunk of sessions is written in one managed transaction that first asks which of its sessions
already exist, then creates only the new ones with their ``PLAYED`` relationships and adds
their aggregates to ``LISTENED`` and ``FOLLOWED_BY``. A failed run leaves every chunk either
fully applied or not at all, so it can simply be run again; new plays for existing users add
to the aggregates once. Sessions are immutable units: a later file that extends an already
loaded session under the same id does not change it (documented in docs/graph-model.md).
Aggregates of users (songs) that have none yet are CREATEd instead of MERGEd, which skips the
relationship scan MERGE needs; this assumes one loader writes to a database at a time.

The whole folder is also recorded as an ``IngestBatch`` (id = content hash of its tables):
re-running the same batch is answered from that record without touching the data.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from graphdb import get_registry, graph_errors
from ingest._tables import AUDIO_FEATURES, SCHEMAS
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

        @neo4j.unit_of_work(metadata={"query": name})
        def work(tx: neo4j.ManagedTransaction, rows: list[dict[str, Any]]) -> int:
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
                simple(t["genres"], "genre_id", ["name", "popularity"]),
            ),
            (
                "ingest/merge_artists",
                "artists",
                simple(t["artists"], "artist_id", ["name", "popularity"]),
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
        songs = t["songs"].drop_duplicates("song_id")
        props = ["name", "duration_ms", "popularity", *AUDIO_FEATURES]
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
    def _session_rows(chunk: pd.DataFrame) -> list[dict[str, Any]]:
        """One row per session with its plays as parallel lists (chunk sorted by session, pos)."""
        sid = chunk["session_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
        ends = np.r_[starts[1:], len(sid)]
        ts = chunk["ts"].to_numpy(dtype=np.int64)
        ms_raw = chunk["ms_played"].to_numpy(dtype=np.float64)
        known = ~np.isnan(ms_raw)
        ms = np.where(known, ms_raw, 0).astype(np.int64)
        first_ts = np.minimum.reduceat(ts, starts)
        last_end = np.maximum.reduceat(ts + ms, starts)
        songs = chunk["song_id"].tolist()
        pos = chunk["pos"].to_numpy(dtype=np.int64).tolist()
        at = ts.tolist()
        ms_l = [int(v) if k else None for v, k in zip(ms.tolist(), known.tolist(), strict=True)]
        skipped = chunk["skipped"].to_numpy(dtype=bool).tolist()
        users = chunk["user_id"].to_numpy()
        return [
            {
                "id": sid[a],
                "user_id": users[a],
                "start": int(first_ts[i]),
                "end": int(last_end[i]),
                "songs": songs[a:b],
                "pos": pos[a:b],
                "at": at[a:b],
                "ms": ms_l[a:b],
                "skipped": skipped[a:b],
            }
            for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
        ]

    @staticmethod
    def _aggregates(chunk: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Per-chunk sums for ``LISTENED`` and ``FOLLOWED_BY``, sorted by their node ids."""
        g = chunk.groupby(["user_id", "song_id"], sort=True)
        agg = g.agg(
            plays=("ts", "size"),
            ms_played=("ms_played", "sum"),
            ms_known=("ms_played", "count"),
            skips=("skipped", "sum"),
            first_at=("ts", "min"),
            last_at=("ts", "max"),
        ).reset_index()
        ms = agg["ms_played"].to_numpy(dtype=np.float64).astype(np.int64).tolist()
        known = (agg["ms_known"].to_numpy() > 0).tolist()
        listened = [
            {
                "user_id": u,
                "song_id": s,
                "plays": p,
                "ms_played": m if k else None,
                "skips": sk,
                "first_at": f,
                "last_at": la,
            }
            for u, s, p, m, k, sk, f, la in zip(
                agg["user_id"].tolist(),
                agg["song_id"].tolist(),
                agg["plays"].to_numpy(dtype=np.int64).tolist(),
                ms,
                known,
                agg["skips"].to_numpy(dtype=np.int64).tolist(),
                agg["first_at"].to_numpy(dtype=np.int64).tolist(),
                agg["last_at"].to_numpy(dtype=np.int64).tolist(),
                strict=True,
            )
        ]
        nxt = chunk["song_id"].shift(-1)
        same = chunk["session_id"].eq(chunk["session_id"].shift(-1))
        pairs = pd.DataFrame({"a": chunk["song_id"][same], "b": nxt[same]})
        counts = pairs.groupby(["a", "b"], sort=True).size()
        transitions = [
            {"a": a, "b": b, "count": c}
            for (a, b), c in zip(counts.index.tolist(), counts.to_numpy().tolist(), strict=True)
        ]
        return listened, transitions

    def _plays(self, plays: pd.DataFrame, result: LoadResult) -> None:
        reg = self.reg
        q_find = reg.text("ingest/find_sessions")
        q_sessions = reg.text("ingest/create_sessions")
        q_listened = reg.text("ingest/add_listened")
        q_trans = reg.text("ingest/add_transitions")
        q_fresh = reg.text("ingest/find_fresh")
        q_new_listened = reg.text("ingest/create_listened")
        q_new_trans = reg.text("ingest/create_transitions")
        total = len(plays)
        done = 0
        t0 = time.perf_counter()

        @neo4j.unit_of_work(metadata={"query": "ingest/create_sessions"})
        def work(tx: neo4j.ManagedTransaction, chunk: pd.DataFrame) -> tuple[int, int, int, int]:
            ids = chunk["session_id"].unique().tolist()
            existing = set(tx.run(q_find, ids=ids).single(strict=True)["existing"])
            if existing:
                chunk = chunk[~chunk["session_id"].isin(existing)]
            if chunk.empty:
                return 0, len(existing), 0, 0
            sessions = self._session_rows(chunk)
            listened, transitions = self._aggregates(chunk)
            fresh = tx.run(
                q_fresh,
                user_ids=sorted({r["user_id"] for r in listened}),
                song_ids=sorted({r["a"] for r in transitions}),
            ).single(strict=True)
            fresh_users, fresh_songs = set(fresh["users"]), set(fresh["songs"])
            created = tx.run(q_sessions, rows=sessions).consume().counters.relationships_created
            for rows, q_create, q_merge, key, is_fresh in (
                (listened, q_new_listened, q_listened, "user_id", fresh_users),
                (transitions, q_new_trans, q_trans, "a", fresh_songs),
            ):
                new_rows = [r for r in rows if r[key] in is_fresh]
                old_rows = [r for r in rows if r[key] not in is_fresh]
                for q, part in ((q_create, new_rows), (q_merge, old_rows)):
                    if part:
                        created += tx.run(q, rows=part).consume().counters.relationships_created
            rels = len(sessions) + len(chunk) + len(listened) + len(transitions)
            return len(sessions), len(existing), rels, created

        with graph_errors(), self.driver.session(database=self.database) as session:
            for chunk in self._session_chunks(plays):
                new, old, rels, created = session.execute_write(work, chunk)
                result.sessions_new += new
                result.sessions_existing += old
                result.relationships += rels
                result.relationships_created += created
                done += len(chunk)
                self.progress("plays", done, total)
        result.rows["plays"] = total
        result.seconds["plays"] = time.perf_counter() - t0

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
