"""Bulk import: fill an empty database from a folder of normalised tables with neo4j-admin.

Why: the online :class:`~ingest._loader.Loader` writes through Cypher transactions (MERGE,
exactly-once sessions), which is what adding to a live graph needs, and slow for the first
load of a large data set. ``neo4j-admin database import full`` writes the store files
directly, many times faster, but only into the database of a *stopped* server, and it
replaces that database whole. So this path is for the locally managed server
(:class:`graphdb.LocalServer`) and an empty database, or an explicit ``force_overwrite``.

The graph is the loader's contract, computed here from the same tables by the same rules, so
both paths give the same graph (``tests/test_bulk.py`` compares full dumps):

* entity rows are deduplicated on their key, first row wins; a null (or NaN) property is
  absent; property types follow the columns as the loader reads them with pandas (an integer
  column with nulls arrives as floats, so it is imported as ``double``, as the loader stores it);
* users and songs referenced by plays or playlists but missing from their tables become stub
  nodes with an id only;
* ``BY``, ``ON`` and ``IN_GENRE`` need both ends: a reference to an unknown artist, album,
  song or genre is dropped; a repeated genre membership keeps the weight of its last row;
* a session's plays are ordered by ``pos``, ties in file order. ``Session``: start = earliest
  ``ts``, end = latest ``ts + ms_played`` (unknown counts as 0), plays = rows; ``HAD`` comes
  from the user of its first play; ``PLAYED`` leaves an unknown ``ms_played`` absent;
* ``LISTENED`` per (user, song): plays, skips, the sum of the known ``ms_played`` (absent when
  none is known), first and last ``ts``; ``FOLLOWED_BY`` counts consecutive plays of a session;
* playlists come from both playlist tables; ``CREATED`` from the owner of the first row;
  one ``CONTAINS {pos}`` per track row.

Steps: check that the database is empty -> write CSV files (header row in the import format;
plays are read dictionary-encoded and written in slices) under ``<instance>/import/`` -> stop
the server -> import -> start -> apply the schema (constraints are created after the import)
-> check the counts -> record the ``IngestBatch``. A failed import leaves an *empty* database
(the tool's half-written store is replaced by an empty import) and the server running again;
the CSV files and the tool's output are then kept for a look.

This module owns what is about our tables (the CSV files and the import arguments); running
the tool on the local server, stopping it first and renewing bookmarks after are
:mod:`graphdb`'s (``stop_and_wait``, ``run_admin_tool``, ``forget_bookmarks``...).
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import neo4j
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graphdb import (
    LocalServer,
    admin_tool_output,
    apply_schema,
    connect,
    forget_bookmarks,
    get_registry,
    graph_errors,
    graph_stats,
    import_empty_database,
    run_admin_tool,
    stop_and_wait,
)
from ingest._loader import LoadResult, batch_id
from ingest._tables import AUDIO_FEATURES, SCHEMAS, with_name_prefix
from spotify_engine.errors import IngestError
from spotify_engine.settings import Settings

log = logging.getLogger(__name__)

#: ``progress(phase, done, total)``; phases ``csv`` (rows written), then ``stop``, ``import``,
#: ``start``, ``schema`` (0 of 1, then 1 of 1).
Progress = Callable[[str, int, int], None]

#: The only database Community Edition serves besides ``system``: the import must target it.
DEFAULT_DATABASE = "neo4j"
#: Rows rendered per CSV write.
CHUNK_ROWS = 100_000
#: Lines of the tool's output quoted in an error.
ERROR_LINES = 12
# neo4j-admin reads ``--nodes=Label=path[,path]`` and treats file names as patterns.
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]+")
_PLAY_KEYS = ("user_id", "song_id", "session_id")


@dataclass
class BulkResult(LoadResult):
    """What a bulk import did.

    ``rows`` counts input rows per phase the way :class:`~ingest._loader.LoadResult` does, so
    rows/s compare with the online loader; ``nodes`` and ``relationships`` are what the import
    created (exact). ``seconds`` has ``csv``, ``stop``, ``import``, ``start``, ``schema`` and
    ``record``; ``rates`` has rows, nodes and relationships per second for ``import`` (the tool
    alone), ``offline`` (stop + import + start + schema, while there is no graph to query) and
    ``total`` (everything, the CSV files included).
    """

    nodes: int = 0
    csv_bytes: int = 0
    rates: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def import_seconds(self) -> float:
        return self.seconds.get("import", 0.0)

    @property
    def offline_seconds(self) -> float:
        return sum(self.seconds.get(k, 0.0) for k in ("stop", "import", "start", "schema"))

    def _rate(self, seconds: float) -> dict[str, float]:
        rows = sum(self.rows.values())
        per = (lambda n: round(n / seconds, 1)) if seconds > 0 else (lambda n: 0.0)
        return {
            "seconds": round(seconds, 3),
            "rows_per_s": per(rows),
            "nodes_per_s": per(self.nodes),
            "relationships_per_s": per(self.relationships),
        }

    def compute_rates(self) -> None:
        self.rates = {
            "import": self._rate(self.import_seconds),
            "offline": self._rate(self.offline_seconds),
            "total": self._rate(self.total_seconds),
        }


@dataclass
class _Csv:
    """One input of the import: ``--<kind>=<group>=<path>``."""

    kind: str  # "nodes" | "relationships"
    group: str  # label or relationship type
    name: str
    table: pa.Table
    path: Path | None = None
    multiline: bool = False


# -- target ---------------------------------------------------------------------------------------


def ensure_bulk_target(
    settings: Settings, driver: neo4j.Driver, *, force_overwrite: bool = False
) -> int:
    """Refuse a target the bulk import must not replace; returns its node count.

    Raises:
        IngestError: not the locally managed server, not the default database, or a database
            that holds nodes (unless ``force_overwrite``).
    """
    if not settings.uses_local_server:
        raise IngestError(
            f"bulk import needs the locally managed Neo4j server (NEO4J_URI is {settings.uri})",
            hint="load without --bulk, or unset NEO4J_URI to use the local server",
        )
    if settings.neo4j_database != DEFAULT_DATABASE:
        raise IngestError(
            f"bulk import can only fill the default database {DEFAULT_DATABASE!r} "
            f"(got NEO4J_DATABASE={settings.neo4j_database!r})",
            hint=f"set NEO4J_DATABASE={DEFAULT_DATABASE} or load without --bulk",
        )
    nodes = graph_stats(driver, settings.neo4j_database).nodes
    if nodes and not force_overwrite:
        raise IngestError(
            f"bulk import replaces the whole database and only fills an empty one, but "
            f"{settings.neo4j_database!r} at {settings.uri} holds {nodes:,} nodes",
            hint="load without --bulk to add to the graph, or empty the database first "
            "(`spotify-engine neo4j reset`); from Python, force_overwrite=True replaces it",
        )
    return nodes


# -- tables -> import inputs ----------------------------------------------------------------------


def _read(folder: Path, name: str) -> pd.DataFrame:
    """A small table as the loader reads it (pandas dtypes decide the property types)."""
    path = folder / f"{name}.parquet"
    table = pq.read_table(path) if path.exists() else SCHEMAS[name].empty_table()
    return table.to_pandas()


def _read_plays(folder: Path) -> pa.Table:
    path = folder / "plays.parquet"
    if not path.exists():
        return SCHEMAS["plays"].empty_table()
    return pq.read_table(path, read_dictionary=list(_PLAY_KEYS))


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array: pandas' Arrow-backed string columns convert to a ChunkedArray
    (even when empty, as every column of a source without genres is), which
    ``pa.concat_arrays`` refuses."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _typed(series: pd.Series) -> tuple[str, pa.Array]:
    """A column as the loader would send it: the import type suffix and its values."""
    if pd.api.types.is_bool_dtype(series):
        return ":boolean", _flat(pa.array(series, type=pa.bool_()))
    if pd.api.types.is_integer_dtype(series):
        return ":long", _flat(pa.array(series, type=pa.int64()))
    if pd.api.types.is_float_dtype(series):
        return ":double", _flat(pa.array(series, type=pa.float64(), from_pandas=True))
    return "", _strings(series)


def _strings(values: pd.Series | Sequence[str]) -> pa.Array:
    return _flat(pa.array(values, type=pa.string(), from_pandas=True))


def _nodes(
    label: str, df: pd.DataFrame, key: str, props: Sequence[str], stubs: Sequence[str] = ()
) -> pa.Table:
    """Node rows of ``df`` (already deduplicated) plus stub ids without properties."""
    cols: dict[str, pa.Array] = {
        f"id:ID({label})": pa.concat_arrays([_strings(df[key]), _strings(list(stubs))])
    }
    for name in props:
        suffix, arr = _typed(df[name])
        cols[name + suffix] = pa.concat_arrays([arr, pa.nulls(len(stubs), arr.type)])
    return pa.table(cols)


def _rels(
    start: str, end: str, a: pa.Array | pd.Series, b: pa.Array | pd.Series, **props: pa.Array
) -> pa.Table:
    def arr(x: pa.Array | pd.Series) -> pa.Array:
        return x if isinstance(x, pa.Array) else _strings(x)

    cols = {f":START_ID({start})": arr(a), f":END_ID({end})": arr(b), **props}
    return pa.table(cols)


def _codes(plays: pa.Table, name: str) -> tuple[np.ndarray, pa.Array]:
    """Integer codes of a (dictionary-encoded) string column and the distinct values they index.

    Chunks may carry different, even repetitive, dictionaries: codes are remapped onto one.
    """
    col = plays[name]
    if col.null_count:
        raise IngestError(f"plays.{name} has {col.null_count} nulls; the loader cannot load them")
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    chunks = [c for c in col.chunks if len(c)]
    if not chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], type=pa.string())
    values = pc.unique(pa.concat_arrays([c.dictionary.cast(pa.string()) for c in chunks]))
    parts = []
    for c in chunks:
        remap = pc.index_in(c.dictionary.cast(pa.string()), value_set=values).to_numpy()
        parts.append(remap[c.indices.to_numpy(zero_copy_only=False)])
    return np.concatenate(parts).astype(np.int64), values


def _take(values: pa.Array, codes: np.ndarray) -> pa.Array:
    return values.take(pa.array(codes, type=pa.int64()))


class _Plan:
    """Every CSV input computed from a folder, with the loader's row counts."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: list[_Csv] = []
        self.rows: dict[str, int] = {}
        self.sessions = 0
        self.plays = 0
        self.playlist_tracks = 0

    def add(self, kind: str, group: str, name: str, table: pa.Table) -> None:
        self.files.append(_Csv(kind, group, name, table))

    @property
    def nodes(self) -> int:
        return sum(f.table.num_rows for f in self.files if f.kind == "nodes")

    @property
    def relationships(self) -> int:
        return sum(f.table.num_rows for f in self.files if f.kind == "relationships")

    def build(self) -> _Plan:
        folder = self.folder
        t = {name: _read(folder, name) for name in SCHEMAS if name != "plays"}
        plays = _read_plays(folder)
        self.plays = plays.num_rows
        self.playlist_tracks = len(t["playlist_tracks"])
        if not self.plays and not self.playlist_tracks:
            raise IngestError(f"{folder} holds no plays and no playlist tracks: nothing to load")
        tracks, playlists = t["playlist_tracks"], t["playlists"]

        users_c, users_v = _codes(plays, "user_id")
        songs_c, songs_v = _codes(plays, "song_id")
        play_users = set(users_v.to_pylist())
        play_songs = set(songs_v.to_pylist())

        users = t["users"].drop_duplicates("user_id")
        extra_users = (play_users | set(playlists["user_id"].dropna())) - set(users["user_id"])
        self.add(
            "nodes",
            "User",
            "users",
            _nodes(
                "User",
                users,
                "user_id",
                ["name", "user_type", "activity_level"],
                sorted(extra_users),
            ),
        )
        self.rows["users"] = len(users) + len(extra_users)

        genres = with_name_prefix(t["genres"].drop_duplicates("genre_id"))
        artists = with_name_prefix(t["artists"].drop_duplicates("artist_id"))
        albums = t["albums"].drop_duplicates("album_id")
        songs = with_name_prefix(t["songs"].drop_duplicates("song_id"))
        stub_songs = sorted((play_songs | set(tracks["song_id"].unique())) - set(songs["song_id"]))
        self.add(
            "nodes",
            "Genre",
            "genres",
            _nodes("Genre", genres, "genre_id", ["name", "name_prefix", "popularity"]),
        )
        self.add(
            "nodes",
            "Artist",
            "artists",
            _nodes("Artist", artists, "artist_id", ["name", "name_prefix", "popularity"]),
        )
        self.add("nodes", "Album", "albums", _nodes("Album", albums, "album_id", ["name"]))
        song_props = ["name", "name_prefix", "duration_ms", "popularity", *AUDIO_FEATURES]
        self.add("nodes", "Song", "songs", _nodes("Song", songs, "song_id", song_props, stub_songs))
        for name, df in (("genres", genres), ("artists", artists), ("albums", albums)):
            self.rows[name] = len(df)
        self.rows["songs"] = len(songs) + len(stub_songs)

        artist_ids, album_ids = set(artists["artist_id"]), set(albums["album_id"])
        genre_ids = set(genres["genre_id"])
        song_ids = set(songs["song_id"]) | set(stub_songs)
        by = songs[songs["artist_id"].isin(artist_ids)]
        on = songs[songs["album_id"].isin(album_ids)]
        album_by = albums[albums["artist_id"].isin(artist_ids)]
        self.add(
            "relationships", "BY", "song_by", _rels("Song", "Artist", by.song_id, by.artist_id)
        )
        self.add(
            "relationships",
            "BY",
            "album_by",
            _rels("Album", "Artist", album_by.album_id, album_by.artist_id),
        )
        self.add("relationships", "ON", "song_on", _rels("Song", "Album", on.song_id, on.album_id))
        for name, label, key, ids in (
            ("song_genres", "Song", "song_id", song_ids),
            ("artist_genres", "Artist", "artist_id", artist_ids),
        ):
            df = t[name]
            self.rows[name] = len(df)
            df = df[df[key].isin(ids) & df["genre_id"].isin(genre_ids)]
            df = df.drop_duplicates([key, "genre_id"], keep="last")
            suffix, weight = _typed(df["weight"])
            self.add(
                "relationships",
                "IN_GENRE",
                name,
                _rels(label, "Genre", df[key], df["genre_id"], **{"weight" + suffix: weight}),
            )

        if self.plays:
            self._plays(plays, users_c, users_v, songs_c, songs_v)
            self.rows["plays"] = self.plays
        if not tracks.empty or not playlists.empty:
            self._playlists(playlists, tracks)
        return self

    def _plays(
        self,
        plays: pa.Table,
        user: np.ndarray,
        user_v: pa.Array,
        song: np.ndarray,
        song_v: pa.Array,
    ) -> None:
        n = plays.num_rows
        sess, sess_v = _codes(plays, "session_id")
        for name in ("pos", "ts"):
            if plays[name].null_count:
                raise IngestError(f"plays.{name} has {plays[name].null_count} nulls")
        pos = plays["pos"].to_numpy().astype(np.int64)
        ts = plays["ts"].to_numpy().astype(np.int64)
        known = plays["ms_played"].is_valid().to_numpy(zero_copy_only=False)
        ms = pc.fill_null(plays["ms_played"], 0).to_numpy().astype(np.int64)
        skipped = pc.fill_null(plays["skipped"], False).to_numpy(zero_copy_only=False)

        order = np.lexsort((pos, sess))  # stable: ties in pos keep file order
        s_sorted = sess[order]
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        session_ids = _take(sess_v, s_sorted[starts])
        self.sessions = len(starts)
        self.add(
            "nodes",
            "Session",
            "sessions",
            pa.table(
                {
                    "id:ID(Session)": session_ids,
                    "start:long": np.minimum.reduceat(ts[order], starts),
                    "end:long": np.maximum.reduceat((ts + ms)[order], starts),
                    "plays:long": np.diff(np.r_[starts, n]),
                }
            ),
        )
        had_users = _take(user_v, user[order[starts]])
        self.add("relationships", "HAD", "had", _rels("User", "Session", had_users, session_ids))
        self.add(
            "relationships",
            "PLAYED",
            "played",
            pa.table(
                {
                    ":START_ID(Session)": plays["session_id"],
                    ":END_ID(Song)": plays["song_id"],
                    "pos:long": pc.cast(plays["pos"], pa.int64()),
                    "at:long": plays["ts"],
                    "ms_played:long": plays["ms_played"],
                    "skipped:boolean": pc.fill_null(plays["skipped"], False),
                }
            ),
        )

        m = max(len(song_v), 1)
        key = user * m + song
        o = np.argsort(key, kind="stable")
        k = key[o]
        st = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        ms_known = np.add.reduceat(known[o].astype(np.int64), st)
        self.add(
            "relationships",
            "LISTENED",
            "listened",
            _rels(
                "User",
                "Song",
                _take(user_v, k[st] // m),
                _take(song_v, k[st] % m),
                **{
                    "plays:long": pa.array(np.diff(np.r_[st, n])),
                    "ms_played:long": pa.array(
                        np.add.reduceat(ms[o], st), mask=ms_known == 0, type=pa.int64()
                    ),
                    "skips:long": pa.array(np.add.reduceat(skipped[o].astype(np.int64), st)),
                    "first_at:long": pa.array(np.minimum.reduceat(ts[o], st)),
                    "last_at:long": pa.array(np.maximum.reduceat(ts[o], st)),
                },
            ),
        )

        song_sorted = song[order]
        same = s_sorted[1:] == s_sorted[:-1]
        pairs = song_sorted[:-1][same] * m + song_sorted[1:][same]
        pair, count = np.unique(pairs, return_counts=True)
        self.add(
            "relationships",
            "FOLLOWED_BY",
            "followed_by",
            _rels(
                "Song",
                "Song",
                _take(song_v, pair // m),
                _take(song_v, pair % m),
                **{"count:long": pa.array(count.astype(np.int64))},
            ),
        )

    def _playlists(self, playlists: pd.DataFrame, tracks: pd.DataFrame) -> None:
        meta = playlists.drop_duplicates("playlist_id")
        stubs = sorted(set(tracks["playlist_id"].unique()) - set(meta["playlist_id"]))
        props = ["name", "modified_at", "num_followers"]
        self.add(
            "nodes", "Playlist", "playlists", _nodes("Playlist", meta, "playlist_id", props, stubs)
        )
        owned = meta[meta["user_id"].notna()]
        self.add(
            "relationships",
            "CREATED",
            "created",
            _rels("User", "Playlist", owned["user_id"], owned["playlist_id"]),
        )
        pos = pa.array(tracks["pos"].astype(int), type=pa.int64())
        self.add(
            "relationships",
            "CONTAINS",
            "contains",
            _rels(
                "Playlist", "Song", tracks["playlist_id"], tracks["song_id"], **{"pos:long": pos}
            ),
        )
        self.rows["playlists"] = len(meta) + len(stubs)
        self.rows["playlist_tracks"] = len(tracks)


# -- CSV ------------------------------------------------------------------------------------------


def _csv_ready(table: pa.Table) -> pa.Table:
    """Doubles that Java cannot read as pyarrow prints them (``inf``) become ``Infinity``."""
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if not pa.types.is_floating(col.type) or not pc.any(pc.is_inf(col)).as_py():
            continue
        text = [
            None
            if v is None or math.isnan(v)
            else ("Infinity" if v > 0 else "-Infinity")
            if math.isinf(v)
            else repr(v)
            for v in col.to_pylist()
        ]
        table = table.set_column(i, name, pa.array(text, type=pa.string()))
    return table


def _has_line_breaks(table: pa.Table) -> bool:
    for col in table.columns:
        typ = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if not pa.types.is_string(typ) or not len(col):
            continue
        values = col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col
        if pc.any(pc.match_substring_regex(values, r"[\r\n]")).as_py():
            return True
    return False


def _write_csv(path: Path, table: pa.Table, tick: Callable[[int], None]) -> None:
    """A header row of import names, then the rows: strings quoted, nulls as empty fields."""
    table = _csv_ready(table)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with path.open("wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        with pacsv.CSVWriter(fh, table.schema, write_options=options) as writer:
            for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
                writer.write_batch(batch)
                tick(batch.num_rows)


# -- the import tool's arguments ------------------------------------------------------------------


def _import_args(
    files: Sequence[_Csv], database: str, work: Path, options: Sequence[str]
) -> list[str]:
    args = [
        "database",
        "import",
        "full",
        database,
        "--overwrite-destination=true",
        "--bad-tolerance=0",
        "--skip-bad-relationships=false",
        "--skip-duplicate-nodes=false",
        "--ignore-empty-strings=false",
        "--trim-strings=false",
        "--legacy-style-quoting=false",
        "--id-type=string",
        "--verbose",  # the cause of a failure, not only "Error in input data"
        f"--report-file={work / 'import.report'}",
    ]
    args += [f"--{f.kind}={f.group}={f.path}" for f in files]
    multiline = [str(f.path) for f in files if f.multiline]
    if multiline:
        args += ["--multiline-fields-format=v2", f"--multiline-fields={','.join(multiline)}"]
    return [*args, *options]


# -- entry point ----------------------------------------------------------------------------------


def bulk_import(
    folder: Path,
    settings: Settings,
    *,
    driver: neo4j.Driver | None = None,
    source: str = "tables",
    force_overwrite: bool = False,
    progress: Progress | None = None,
    import_options: Sequence[str] = (),
    keep_files: bool = False,
    timeout_s: float | None = None,
) -> BulkResult:
    """Replace the (empty) database of the local server by the graph of ``folder``.

    Args:
        folder: normalised tables written by a reader (see ``ingest._tables``).
        settings: must describe the locally managed server (``Settings.uses_local_server``).
        driver: an open driver to it (default: one opened and closed here). It survives the
            restart (it reconnects; its ``execute_query`` bookmarks are renewed). Other
            drivers that wrote to the replaced database need :func:`graphdb.forget_bookmarks`.
        source: recorded on the ``IngestBatch`` (default ``"tables"``, as the loader).
        force_overwrite: replace a database that holds nodes (default: refuse).
        progress: see :data:`Progress`.
        import_options: extra ``neo4j-admin database import full`` options, e.g.
            ``["--threads=4", "--max-off-heap-memory=4G"]``.
        keep_files: keep the CSV files and the tool's output (kept anyway on failure).
        timeout_s: limit for the import tool (default none).

    Raises:
        IngestError: wrong target, nothing to load, or the import tool failed (its last lines;
            the database is then empty and the server running).
        ServerError, GraphError: the server did not stop or start, a statement failed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(f"no such folder of normalised tables: {folder}")
    notify: Progress = progress or (lambda phase, done, total: None)
    own_driver = driver is None
    drv = connect(settings) if driver is None else driver
    try:
        return _bulk(
            folder,
            settings,
            drv,
            source,
            force_overwrite,
            notify,
            import_options,
            keep_files,
            timeout_s,
        )
    finally:
        if own_driver:
            drv.close()


def _bulk(
    folder: Path,
    settings: Settings,
    driver: neo4j.Driver,
    source: str,
    force_overwrite: bool,
    notify: Progress,
    import_options: Sequence[str],
    keep_files: bool,
    timeout_s: float | None,
) -> BulkResult:
    db = settings.neo4j_database
    ensure_bulk_target(settings, driver, force_overwrite=force_overwrite)
    server = LocalServer(settings)
    bid = batch_id(folder)
    result = BulkResult(batch_id=bid)
    work = server.home / "import" / f"bulk-{bid}"
    if not _SAFE_PATH.fullmatch(str(work)):
        raise IngestError(
            f"neo4j-admin cannot take the path {work} (only letters, digits and ._-/ are safe)",
            hint="set SPOTIFY_ENGINE_NEO4J_HOME to such a path",
        )

    t0 = time.perf_counter()
    plan = _Plan(folder).build()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    total = sum(f.table.num_rows for f in plan.files)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        notify("csv", done, total)

    notify("csv", 0, total)
    for f in plan.files:
        f.path = work / f"{f.name}.csv"
        f.multiline = _has_line_breaks(f.table)
        _write_csv(f.path, f.table, tick)
        result.csv_bytes += f.path.stat().st_size
    result.rows = dict(plan.rows)
    result.nodes, result.relationships = plan.nodes, plan.relationships
    result.sessions_new = plan.sessions
    result.seconds["csv"] = time.perf_counter() - t0
    log.info("wrote %d CSV files (%d bytes) to %s", len(plan.files), result.csv_bytes, work)

    def step(name: str, fn: Callable[[], object]) -> None:
        notify(name, 0, 1)
        t = time.perf_counter()
        fn()
        result.seconds[name] = time.perf_counter() - t
        notify(name, 1, 1)

    failure: IngestError | None = None

    def run_import() -> None:
        nonlocal failure
        args = _import_args(plan.files, db, work, import_options)
        rc = run_admin_tool(server, args, work, "import", timeout_s)
        if rc == 0:
            return
        code = f"ran past {timeout_s:.0f}s" if rc is None else f"exit {rc}"
        reason, tail = admin_tool_output(work, "import", ERROR_LINES)
        empty = import_empty_database(server, db, work)
        state = "the database was left empty" if empty else "the database may be unusable"
        failure = IngestError(
            f"neo4j-admin database import failed ({code}): {reason}; {state}. "
            f"Its last lines:\n{tail}",
            hint=f"see {work}/import.err and import.report, fix the tables and run again",
        )

    try:
        step("stop", lambda: stop_and_wait(server))
        step("import", run_import)
    finally:
        step("start", server.start)
        forget_bookmarks(driver, db)
    if failure is not None:
        raise failure
    step("schema", lambda: apply_schema(driver, db))

    t0 = time.perf_counter()
    stats = graph_stats(driver, db)
    got = (stats.nodes, sum(stats.relationships.values()))
    if got != (plan.nodes, plan.relationships):
        raise IngestError(
            f"the import finished but {db!r} holds {got[0]:,} nodes and {got[1]:,} "
            f"relationships; expected {plan.nodes:,} and {plan.relationships:,}",
            hint=f"see {work}/import.out and import.report",
        )
    with graph_errors():
        driver.execute_query(
            get_registry().query("ingest/record_batch"),
            id=bid,
            props={
                "source": source,
                "folder": str(folder),
                "loaded_at": int(time.time() * 1000),
                "plays": plan.plays,
                "sessions_new": plan.sessions,
                "playlist_tracks": plan.playlist_tracks,
            },
            database_=db,
        )
    result.seconds["record"] = time.perf_counter() - t0
    if not keep_files:
        shutil.rmtree(work, ignore_errors=True)
    result.compute_rates()
    log.info(
        "bulk import of %s: %d nodes, %d relationships; import %.1fs, total %.1fs",
        folder,
        result.nodes,
        result.relationships,
        result.import_seconds,
        result.total_seconds,
    )
    return result
