"""Neo4j -> :class:`GraphSnapshot`: stream integer ids out of the graph, index them with numpy.

How it is fast: every statement (``cypher/export/*.cypher``) returns Neo4j internal ids
(``id(n)``, plain integers) packed into a few large lists, never one record per edge. Plays come
as one record per user with parallel lists (session, song, timestamp, ms played, skipped), read
by ``workers`` sessions in parallel while this thread reads songs and static edges, so the server
computes while the client decodes. Each node type's graph ids are fetched once and sorted (their
order defines the dense index ``0..n-1``), and internal ids are mapped to dense indices with
``np.searchsorted``. A whole node or edge type is one label scan; a subgraph is read by seeks
from the internal ids of its nodes, so memory and time follow the exported part. The exception
is ``until_ms``: the server reads every play of the exported users and filters by time, so a
cut-off export costs about as much as a full one.

Consistency: the export is a series of read-committed reads, not a point-in-time snapshot. Run
it when nothing is loading; a relationship whose end node is not in the exported node lists
(possible only under concurrent writes) is dropped and the drop is logged.

Canonical order, so that :meth:`GraphSnapshot.snapshot_id` is the same for the same graph
content: plays are sorted by (user, timestamp, session, song, ms played), static edges by
(source, destination). Sessions are indexed by their graph id, sorted, over the sessions with
at least one exported play.

Restrictions (they compose; each keeps dense indices sorted by graph id):

``until_ms``
    Only plays with ``at < until_ms``: a held-out period never enters the export. Playlists
    are kept only when ``modified_at < until_ms``: a playlist's tracks are its latest version,
    which may reflect listening after the cut-off, and a playlist without ``modified_at`` cannot
    be shown to predate it, so it is left out too. Node sets are otherwise unchanged.
``users``
    A sample of users: ``user_ids`` are exactly these users (unknown ids raise ``ValueError``)
    and plays are theirs only. Songs, artists, genres and playlists stay complete, so their
    indices are comparable with a full export.
``genres``
    Songs restricted to those with an ``IN_GENRE`` relationship to any of the given genre ids
    (unknown ids raise ``ValueError``); plays, playlist tracks and song edges to those songs
    only. Artists are those of the kept songs; genres stay complete (a song keeps all its
    genre memberships); playlists are those holding at least one kept song. Users stay as
    they are (all, or the ``users`` sample).
``khop=(user_ids, k)``
    The k-hop neighbourhood of the seed users in the bipartite user-song graph, where a user
    and a song are adjacent when the user played the song (before ``until_ms`` when given;
    through ``LISTENED.first_at``). Hop 1 adds the seeds' songs, hop 2 every user who played
    one of those songs, hop 3 those users' songs, and so on; the expansion only passes
    through users and songs allowed by ``users`` and ``genres``. Users and songs are the
    nodes within k hops (seeds included even without plays) and plays are the induced ones:
    a play is exported when both its user and its song are in the neighbourhood (so for
    k=2 the hop-2 users' plays of the hop-1 songs). Artists, genres and playlists follow the
    kept songs as for ``genres``. ``k`` must be >= 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import neo4j
import numpy as np

from gnn.graph._snapshot import GraphSnapshot, count_edges
from graphdb import get_registry, graph_errors
from ingest import AUDIO_FEATURES

log = logging.getLogger(__name__)


Progress = Callable[[str, int, int], None]


#: Song properties exported as static content features, in column order.
SONG_FEATURES: tuple[str, ...] = ("duration_ms", *AUDIO_FEATURES)


_FLUSH = 65_536  # plays buffered as Python ints before they are packed into numpy


@dataclass(frozen=True)
class NodeIndex:
    """One node type's dense index: ``ids[i]`` is the graph id and ``nids[i]`` the internal id
    of index ``i``; ids are sorted, so the index does not depend on how the graph was loaded."""

    nids: np.ndarray
    ids: np.ndarray
    _sorted_nids: np.ndarray
    _order: np.ndarray

    @classmethod
    def build(cls, nids: Iterable[int], ids: Iterable[Any]) -> tuple[NodeIndex, np.ndarray]:
        """Index nodes by sorted graph id; also returns the permutation applied to the input."""
        nid_arr = _ints(list(nids))
        id_list = list(ids)
        if len(id_list) != len(nid_arr):
            raise ValueError(f"{len(nid_arr)} internal ids but {len(id_list)} graph ids")
        perm = (
            np.argsort(np.asarray(id_list, dtype=str), kind="stable")
            if id_list
            else np.zeros(0, dtype=np.int64)
        )
        id_arr = np.empty(len(id_list), dtype=object)
        id_arr[:] = id_list
        nid_arr, id_arr = nid_arr[perm], id_arr[perm]
        order = np.argsort(nid_arr, kind="stable")
        return cls(nid_arr, id_arr, nid_arr[order], order), perm

    def __len__(self) -> int:
        return len(self.nids)

    def lookup(self, nids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense indices of internal ids, and a mask of those that belong to this index."""
        nids = np.asarray(nids, dtype=np.int64)
        if len(self._sorted_nids) == 0:
            return np.zeros(len(nids), dtype=np.int64), np.zeros(len(nids), dtype=bool)
        pos = np.minimum(np.searchsorted(self._sorted_nids, nids), len(self._sorted_nids) - 1)
        ok = self._sorted_nids[pos] == nids
        return self._order[pos].astype(np.int64, copy=False), ok


def _ints(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError):  # a null slipped in
        return np.array([-1 if v is None else v for v in values], dtype=np.int64)


def _floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):  # a non-numeric property value
        return np.array([v if isinstance(v, int | float) else np.nan for v in values])


def _bools(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    try:
        return np.array(values, dtype=bool)
    except (TypeError, ValueError):
        return np.array([bool(v) for v in values], dtype=bool)


def fill_missing(x: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """Replace NaN by the column mean (``means`` when given), and by 0 where a whole column is
    missing. Returns float32."""
    x = np.array(x, dtype=np.float64, copy=True)
    if x.size == 0:
        return x.astype(np.float32)
    nan = np.isnan(x)
    if nan.any():
        if means is None:
            counts = (~nan).sum(axis=0)
            sums = np.where(nan, 0.0, x).sum(axis=0)
            means = np.divide(sums, counts, out=np.zeros(x.shape[1]), where=counts > 0)
        means = np.nan_to_num(np.asarray(means, dtype=np.float64), nan=0.0)
        x[nan] = np.broadcast_to(means, x.shape)[nan]
    return x.astype(np.float32)


class GraphReader:
    """Runs the named ``export/*`` statements in one read session (close it when done)."""

    def __init__(self, driver: neo4j.Driver, database: str):
        self.reg = get_registry()
        self.session = driver.session(
            database=database,
            default_access_mode=neo4j.READ_ACCESS,
            # id() is deprecated in favour of elementId(), whose strings are far slower to move.
            notifications_disabled_classifications=[
                neo4j.NotificationDisabledClassification.DEPRECATION
            ],
        )

    def __enter__(self) -> GraphReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def one(self, name: str, **params: Any) -> dict[str, Any]:
        with graph_errors():
            record = self.session.run(self.reg.query(name), params).single(strict=True)
        return dict(record)

    def stream(self, name: str, **params: Any) -> Iterator[neo4j.Record]:
        with graph_errors():
            yield from self.session.run(self.reg.query(name), params)

    def nodes(self, name: str, **params: Any) -> tuple[NodeIndex, dict[str, np.ndarray]]:
        """A node statement returning ``nids``, ``ids`` and extra columns (reordered to match)."""
        rec = self.one(name, **params)
        index, perm = NodeIndex.build(rec.pop("nids"), rec.pop("ids"))
        return index, {k: np.asarray(v, dtype=object)[perm] for k, v in rec.items()}

    def edges(
        self, name: str, src: NodeIndex, dst: NodeIndex, extra: str | None = None, **params: Any
    ) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Edges as dense ``[2, E]`` sorted by (src, dst), the ``extra`` column, and how many
        edges were dropped because an end is not in ``src`` / ``dst``."""
        rec = self.one(name, **params)
        s, ok_s = src.lookup(_ints(rec["src"]))
        d, ok_d = dst.lookup(_ints(rec["dst"]))
        keep = ok_s & ok_d
        vals = np.asarray(rec[extra])[keep] if extra else None
        s, d = s[keep], d[keep]
        order = np.lexsort((d, s))
        return (
            np.vstack([s[order], d[order]]).astype(np.int64),
            None if vals is None else vals[order],
            int((~keep).sum()),
        )


@dataclass
class _Plays:
    """Plays with users and songs as dense indices and sessions still as internal ids."""

    user: np.ndarray
    song: np.ndarray
    ts: np.ndarray
    ms: np.ndarray
    session: np.ndarray
    skipped: np.ndarray

    def take(self, idx: np.ndarray) -> _Plays:
        return _Plays(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: Sequence[_Plays]) -> _Plays:
        return _Plays(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in _Plays.__dataclass_fields__)
        )


def _read_plays(
    driver: neo4j.Driver,
    database: str,
    user_nids: list[int],
    users: NodeIndex,
    until_ms: int | None,
    song_filter: list[int] | None,
) -> tuple[_Plays, int]:
    """One chunk of users' plays, in its own session so that chunks run in parallel. Songs and
    sessions stay internal ids (mapped once all chunks are in); returns the number of plays
    dropped because their user is not in ``users``."""
    names = ("session", "song", "at", "ms", "skipped")
    cols: dict[str, list[Any]] = {k: [] for k in names}
    packed: dict[str, list[np.ndarray]] = {k: [] for k in names}
    rec_users: list[int] = []
    counts: list[int] = []

    def flush() -> None:
        for k in names:
            packed[k].append(_bools(cols[k]) if k == "skipped" else _ints(cols[k]))
            cols[k].clear()

    buffered = 0
    with GraphReader(driver, database) as reader:
        if until_ms is None and song_filter is None:
            records = reader.stream("export/get_user_plays", nids=user_nids)
        else:
            records = reader.stream(
                "export/find_user_plays", nids=user_nids, until=until_ms, songs=song_filter
            )
        for nid, session, song, at, ms, skipped in records:
            rec_users.append(nid)
            counts.append(len(song))
            cols["session"] += session
            cols["song"] += song
            cols["at"] += at
            cols["ms"] += ms
            cols["skipped"] += skipped
            buffered += len(song)
            if buffered >= _FLUSH:
                flush()
                buffered = 0
    flush()
    cat = {k: np.concatenate(v) for k, v in packed.items()}
    user_idx, ok_u = users.lookup(_ints(rec_users))
    plays = _Plays(
        user=np.repeat(user_idx, counts),
        song=cat["song"],
        ts=cat["at"],
        ms=cat["ms"],
        session=cat["session"],
        skipped=cat["skipped"],
    )
    if ok_u.all():
        return plays, 0
    ok = np.repeat(ok_u, counts)
    return plays.take(ok), int((~ok).sum())


def _canonical_play_order(p: _Plays) -> np.ndarray:
    """Sort by (user, ts, session, song, ms); a single int64 key when it fits and has no ties."""
    n = len(p.user)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ts0 = p.ts - p.ts.min()
    span = int(ts0.max()) + 1
    if int(p.user.max()) + 1 <= (2**62) // span:
        key = p.user * span + ts0
        order = np.argsort(key, kind="stable")
        k = key[order]
        if not np.any(k[1:] == k[:-1]):
            return order
    return np.lexsort((p.ms, p.song, p.session, p.ts, p.user))


def _member(nids: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """``nids`` that are in the sorted array ``allowed`` (all of them when it is None)."""
    if allowed is None:
        return nids
    if len(allowed) == 0:
        return nids[:0]
    pos = np.minimum(np.searchsorted(allowed, nids), len(allowed) - 1)
    return nids[allowed[pos] == nids]


def _restrict_khop(
    reader: GraphReader,
    seeds: np.ndarray,
    k: int,
    until_ms: int | None,
    allowed_users: np.ndarray | None,
    allowed_songs: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Internal ids (sorted) of the users and songs within ``k`` hops of the seed users."""
    user_set = np.unique(_member(seeds, allowed_users))
    song_set = np.zeros(0, dtype=np.int64)
    frontier = user_set
    for hop in range(1, k + 1):
        if len(frontier) == 0:
            break
        if hop % 2:
            rec = reader.one("export/expand_user_songs", nids=frontier.tolist(), until=until_ms)
            frontier = np.setdiff1d(_member(_ints(rec["nids"]), allowed_songs), song_set)
            song_set = np.union1d(song_set, frontier)
        else:
            rec = reader.one("export/expand_song_users", nids=frontier.tolist(), until=until_ms)
            frontier = np.setdiff1d(_member(_ints(rec["nids"]), allowed_users), user_set)
            user_set = np.union1d(user_set, frontier)
    return user_set, song_set


def _check_ids(name: str, given: Sequence[str], found: np.ndarray) -> None:
    missing = sorted(set(given) - set(found.tolist()))
    if missing:
        raise ValueError(
            f"{name}: unknown ids {missing[:5]}{' ...' if len(missing) > 5 else ''} "
            f"({len(missing)} of {len(set(given))} not in the graph)"
        )


def _id_list(name: str, values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of ids, not a string (got {values!r})")
    out = sorted({str(v) for v in values})
    if not out:
        raise ValueError(f"{name} must name at least one id (got an empty sequence)")
    return out


def _chunks(values: np.ndarray, parts: int) -> list[list[int]]:
    size = max(1, -(-len(values) // max(1, parts)))
    return [values[i : i + size].tolist() for i in range(0, len(values), size)]


@dataclass
class _Static:
    """Songs (with features), artists, playlists and the static edges between them."""

    song_index: NodeIndex
    song_names: np.ndarray
    song_features: np.ndarray
    artist_index: NodeIndex
    artist_names: np.ndarray
    playlist_index: NodeIndex
    playlist_names: np.ndarray
    song_artist: np.ndarray
    song_genre: np.ndarray
    song_genre_weight: np.ndarray
    artist_genre: np.ndarray
    artist_genre_weight: np.ndarray
    playlist_song: np.ndarray
    playlist_song_pos: np.ndarray
    dropped: dict[str, int]


def _read_static(
    reader: GraphReader, genres: NodeIndex, song_nids: np.ndarray | None, until_ms: int | None
) -> _Static:
    """Everything hanging off the songs: one scan per kind for the whole catalogue, or seeks
    from the given songs (``song_nids``) for a subgraph (artists and playlists follow them)."""
    nan = float("nan")
    if song_nids is None:
        songs, song_cols = reader.nodes("export/list_songs", missing=nan)
        artists, artist_cols = reader.nodes("export/list_artists", missing=nan)
        playlists, playlist_cols = reader.nodes("export/list_playlists", until=until_ms)
        song_scope: dict[str, Any] = {}
        artist_scope: dict[str, Any] = {}
        playlist_scope: dict[str, Any] = {"until": until_ms}
        verb = "list"
    else:
        songs, song_cols = reader.nodes("export/get_songs", nids=song_nids.tolist(), missing=nan)
        song_scope = {"nids": songs.nids.tolist()}
        by = _ints(reader.one("export/get_song_artists", **song_scope)["dst"])
        artists, artist_cols = reader.nodes(
            "export/get_artists", nids=np.unique(by).tolist(), missing=nan
        )
        playlists, playlist_cols = reader.nodes(
            "export/find_song_playlists", **song_scope, until=until_ms
        )
        artist_scope = {"nids": artists.nids.tolist()}
        playlist_scope = {"nids": playlists.nids.tolist()}
        verb = "get"
    features = np.full((len(songs), len(SONG_FEATURES)), np.nan)
    if len(songs):
        features = np.stack([_floats(song_cols[f]) for f in SONG_FEATURES], axis=1)
    dropped: dict[str, int] = {}
    song_artist, _, dropped["song_artist"] = reader.edges(
        f"export/{verb}_song_artists", songs, artists, **song_scope
    )
    song_genre, sg_w, dropped["song_genre"] = reader.edges(
        f"export/{verb}_song_genres", songs, genres, "weight", **song_scope
    )
    artist_genre, ag_w, dropped["artist_genre"] = reader.edges(
        f"export/{verb}_artist_genres", artists, genres, "weight", **artist_scope
    )
    playlist_song, pos, pl_dropped = reader.edges(
        f"export/{verb}_playlist_songs", playlists, songs, "pos", **playlist_scope
    )
    if song_nids is None:  # in a subgraph, playlist tracks outside it are expected
        dropped["playlist_song"] = pl_dropped
    return _Static(
        song_index=songs,
        song_names=song_cols["names"],
        song_features=fill_missing(features),
        artist_index=artists,
        artist_names=artist_cols["names"],
        playlist_index=playlists,
        playlist_names=playlist_cols["names"],
        song_artist=song_artist,
        song_genre=song_genre,
        song_genre_weight=np.asarray(sg_w, dtype=np.float32),
        artist_genre=artist_genre,
        artist_genre_weight=np.asarray(ag_w, dtype=np.float32),
        playlist_song=playlist_song,
        playlist_song_pos=np.asarray(pos, dtype=np.int64),
        dropped=dropped,
    )


def _resolve_nodes(
    reader: GraphReader,
    genre_index: NodeIndex,
    user_list: list[str] | None,
    genre_list: list[str] | None,
    seed_list: list[str] | None,
    k: int,
    until_ms: int | None,
) -> tuple[NodeIndex, np.ndarray | None]:
    """The exported users, and the exported songs' internal ids (None: all songs)."""
    if genre_list is not None:
        _check_ids("genres", genre_list, genre_index.ids)
    user_index: NodeIndex | None = None
    if user_list is not None:
        user_index, _ = reader.nodes("export/find_users", ids=user_list)
        _check_ids("users", user_list, user_index.ids)
    song_nids: np.ndarray | None = None
    if genre_list is not None:
        found = reader.one("export/find_genre_songs", genres=genre_list)["nids"]
        song_nids = np.unique(_ints(found))
    if seed_list is not None:
        seeds, _ = reader.nodes("export/find_users", ids=seed_list)
        _check_ids("khop seeds", seed_list, seeds.ids)
        allowed_users = None if user_index is None else np.sort(user_index.nids)
        user_nids, song_nids = _restrict_khop(
            reader, seeds.nids, k, until_ms, allowed_users, song_nids
        )
        user_index, _ = reader.nodes(
            "export/get_users", nids=user_nids.tolist(), missing=float("nan")
        )
    if user_index is None:
        user_index, _ = reader.nodes("export/list_users")
    return user_index, song_nids


def export_snapshot(
    driver: neo4j.Driver,
    database: str = "neo4j",
    *,
    until_ms: int | None = None,
    users: Sequence[str] | None = None,
    genres: Sequence[str] | None = None,
    khop: tuple[Sequence[str], int] | None = None,
    progress: Progress | None = None,
    workers: int = 2,
) -> GraphSnapshot:
    """Export the graph (or a restricted subgraph) into integer-indexed arrays.

    Args:
        driver: an open driver (the caller owns it).
        database: database name (default ``"neo4j"``).
        until_ms: keep only plays with ``at < until_ms`` and playlists modified before it
            (default: no cut-off). See the module docstring for every restriction.
        users: export only these users (graph ids) and their plays; songs, artists, genres
            and playlists stay complete.
        genres: keep only songs in any of these genres (graph ids) and what hangs off them.
        khop: ``(seed_user_ids, k)``: the k-hop user-song neighbourhood of the seeds with the
            plays it induces.
        progress: called as ``progress(phase, done, total)`` for phases ``nodes``, ``edges``
            and ``plays`` (users done), always from the calling thread.
        workers: sessions reading plays in parallel (default 2; the server does most of the
            work, so more than its cores does not help).

    Returns:
        A :class:`GraphSnapshot` whose ``*_ids`` arrays map every dense index back to the graph.

    Raises:
        ValueError: a bad restriction (unknown user or genre ids, ``k < 1``, empty lists).
        GraphError: the database failed (translated driver errors).
    """
    report = progress or (lambda phase, done, total: None)
    if until_ms is not None and (isinstance(until_ms, bool) or not isinstance(until_ms, int)):
        raise ValueError(f"until_ms must be an int of epoch milliseconds (got {until_ms!r})")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"workers must be 1..64 (got {workers!r})")
    user_list = _id_list("users", users)
    genre_list = _id_list("genres", genres)
    seed_list: list[str] | None = None
    k = 0
    if khop is not None:
        seeds_given, k = khop
        seed_list = _id_list("khop seeds", seeds_given)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"khop k must be an int >= 1 (got {k!r})")

    nan = float("nan")
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    dropped: dict[str, int] = {}
    with GraphReader(driver, database) as reader:
        genre_index, genre_cols = reader.nodes("export/list_genres", missing=nan)
        user_index, song_nids = _resolve_nodes(
            reader, genre_index, user_list, genre_list, seed_list, k, until_ms
        )
        restricted = song_nids is not None
        report("nodes", 1, 1)
        seconds["users"] = time.perf_counter() - t0

        # -- plays in parallel sessions; songs and static edges meanwhile on this one --------
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export-plays")
        try:
            futures = {
                pool.submit(
                    _read_plays,
                    driver,
                    database,
                    chunk,
                    user_index,
                    until_ms,
                    None if song_nids is None else song_nids.tolist(),
                ): len(chunk)
                for chunk in _chunks(user_index.nids, workers * 4)
            }
            t = time.perf_counter()
            static = _read_static(reader, genre_index, song_nids, until_ms)
            song_index = static.song_index
            dropped.update(static.dropped)
            # All sessions in one scan unless the export is a small part of the graph.
            sessions = (
                None
                if restricted or user_list is not None
                else reader.nodes("export/list_sessions")[0]
            )
            report("edges", 1, 1)
            seconds["songs_and_edges"] = time.perf_counter() - t

            t = time.perf_counter()
            parts: list[_Plays] = []
            done = 0
            for fut in as_completed(futures):
                part, dropped_users = fut.result()
                parts.append(part)
                dropped["plays"] = dropped.get("plays", 0) + dropped_users
                done += futures[fut]
                report("plays", done, len(user_index))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        plays = _Plays.concat(parts) if parts else _empty_plays()
        plays.song, ok = song_index.lookup(plays.song)
        if not restricted:  # restricted: plays of other songs are filtered by the server
            dropped["plays"] = dropped.get("plays", 0) + int((~ok).sum())
        used = np.unique(plays.session)
        if sessions is None:
            sessions, _ = reader.nodes("export/get_ids", nids=used.tolist())
        session_nids = _member(used, np.sort(sessions.nids))
        session_index, _ = NodeIndex.build(
            session_nids, sessions.ids[sessions.lookup(session_nids)[0]]
        )
        plays.session, ok_s = session_index.lookup(plays.session)
        ok &= ok_s
        if not ok_s.all():
            dropped["sessions"] = int((~ok_s).sum())
        if not ok.all():
            plays = plays.take(ok)
        order = _canonical_play_order(plays)
        seconds["plays"] = time.perf_counter() - t

    lost = {k: v for k, v in dropped.items() if v}
    if lost:
        log.warning("export dropped relationships to nodes outside the export: %s", lost)
    snap = GraphSnapshot(
        user_ids=user_index.ids,
        song_ids=song_index.ids,
        artist_ids=static.artist_index.ids,
        genre_ids=genre_index.ids,
        playlist_ids=static.playlist_index.ids,
        play_user=plays.user[order],
        play_song=plays.song[order],
        play_ts=plays.ts[order],
        play_ms=plays.ms[order],
        play_session=plays.session[order],
        play_skipped=plays.skipped[order],
        song_artist=static.song_artist,
        song_genre=static.song_genre,
        song_genre_weight=static.song_genre_weight,
        artist_genre=static.artist_genre,
        artist_genre_weight=static.artist_genre_weight,
        playlist_song=static.playlist_song,
        playlist_song_pos=static.playlist_song_pos,
        song_features=static.song_features,
        song_feature_names=list(SONG_FEATURES),
        genre_names=genre_cols["names"],
        song_names=static.song_names,
        artist_names=static.artist_names,
        playlist_names=static.playlist_names,
    )
    total = time.perf_counter() - t0
    edges = count_edges(snap)
    log.info(
        "exported %d users, %d songs, %d plays, %d edges in %.2f s (%.0f edges/s; %s)",
        snap.num_users,
        snap.num_songs,
        snap.num_plays,
        edges,
        total,
        edges / total if total > 0 else float("inf"),
        ", ".join(f"{k} {v:.2f}s" for k, v in seconds.items()),  # static overlaps plays
    )
    return snap


def _empty_plays() -> _Plays:
    z = np.zeros(0, dtype=np.int64)
    return _Plays(z, z, z, z, z, np.zeros(0, dtype=bool))
