"""What the exporter reads out of Neo4j (integer-indexed arrays, nothing model-specific) and its files.

``GraphSnapshot`` is the contract between the Neo4j export (``gnn.graph._export``) and everything
that learns or evaluates (split, ``HeteroData`` building, models, baselines, harness).
Every node type has a dense index ``0..n-1``; ``*_ids`` map an index back to the graph id.
Plays are kept one row per play (with timestamps) so that splits can be made by time and the
training graph built from the training period only: the held-out period never leaks into
edges or into node features such as play counts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class GraphSnapshot:
    """Integer-indexed copy of the graph.

    Shapes (P plays, E_* edges):
        play_user, play_song, play_ts, play_ms, play_session: int64 [P]; play_skipped: bool [P].
            play_ms is -1 where the source did not record it (Last.fm, API events).
        song_artist: int64 [2, E_sa] (row 0 song index, row 1 artist index)
        song_genre: int64 [2, E_sg] with song_genre_weight: float32 [E_sg]
        artist_genre: int64 [2, E_ag] with artist_genre_weight: float32 [E_ag]
        playlist_song: int64 [2, E_ps] with playlist_song_pos: int64 [E_ps]
        song_features: float32 [num_songs, F] static content features (duration, audio);
            NaN-free; ``song_feature_names`` names the columns.
        *_names: object [n] display names, or None when not exported (older snapshots have
            no ``playlist_names``).
    """

    user_ids: np.ndarray
    song_ids: np.ndarray
    artist_ids: np.ndarray
    genre_ids: np.ndarray
    playlist_ids: np.ndarray
    play_user: np.ndarray
    play_song: np.ndarray
    play_ts: np.ndarray
    play_ms: np.ndarray
    play_session: np.ndarray
    play_skipped: np.ndarray
    song_artist: np.ndarray
    song_genre: np.ndarray
    song_genre_weight: np.ndarray
    artist_genre: np.ndarray
    artist_genre_weight: np.ndarray
    playlist_song: np.ndarray
    playlist_song_pos: np.ndarray
    song_features: np.ndarray
    song_feature_names: list[str] = field(default_factory=list)
    genre_names: np.ndarray | None = None
    song_names: np.ndarray | None = None
    artist_names: np.ndarray | None = None
    playlist_names: np.ndarray | None = None

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_songs(self) -> int:
        return len(self.song_ids)

    @property
    def num_artists(self) -> int:
        return len(self.artist_ids)

    @property
    def num_genres(self) -> int:
        return len(self.genre_ids)

    @property
    def num_playlists(self) -> int:
        return len(self.playlist_ids)

    @property
    def num_plays(self) -> int:
        return len(self.play_user)

    def snapshot_id(self) -> str:
        """A content hash: two exports of the same graph give the same id."""
        h = hashlib.sha256()
        for arr in (
            self.play_user,
            self.play_song,
            self.play_ts,
            self.song_artist,
            self.song_genre,
            self.artist_genre,
            self.playlist_song,
        ):
            h.update(np.ascontiguousarray(arr).tobytes())
        for ids in (self.user_ids, self.song_ids):
            h.update("\x1f".join(map(str, ids)).encode())
        return h.hexdigest()[:16]


SNAPSHOT_FORMAT = 1


_ARRAYS_FILE = "snapshot.npz"


_META_FILE = "snapshot.json"


_ARRAY_FIELDS = (
    "play_user",
    "play_song",
    "play_ts",
    "play_ms",
    "play_session",
    "play_skipped",
    "song_artist",
    "song_genre",
    "song_genre_weight",
    "artist_genre",
    "artist_genre_weight",
    "playlist_song",
    "playlist_song_pos",
    "song_features",
)


_ID_FIELDS = ("user_ids", "song_ids", "artist_ids", "genre_ids", "playlist_ids")


_NAME_FIELDS = ("genre_names", "song_names", "artist_names", "playlist_names")


def count_edges(snap: GraphSnapshot) -> int:
    """Plays plus static edges (song-artist, song-genre, artist-genre, playlist-song)."""
    return int(
        snap.num_plays
        + snap.song_artist.shape[1]
        + snap.song_genre.shape[1]
        + snap.artist_genre.shape[1]
        + snap.playlist_song.shape[1]
    )


def snapshot_paths(path: str | Path) -> tuple[Path, Path]:
    """Where a saved snapshot lives: ``x.npz`` names the arrays file, with ``x.json`` beside it;
    any other path is a folder holding ``snapshot.npz`` and ``snapshot.json``."""
    p = Path(path)
    if p.suffix == ".npz":
        return p, p.with_suffix(".json")
    return p / _ARRAYS_FILE, p / _META_FILE


def save_snapshot(snap: GraphSnapshot, path: str | Path) -> Path:
    """Save a snapshot: numeric arrays in an ``.npz`` (no pickles), ids, names and feature
    names in a ``.json`` (see :func:`snapshot_paths`). Returns the ``.npz`` path.

    Each file is written under a temporary name and renamed, so a crash leaves no half file.
    """
    arrays_path, meta_path = snapshot_paths(path)
    arrays_path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f: np.asarray(getattr(snap, f)) for f in _ARRAY_FIELDS}
    meta: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "snapshot_id": snap.snapshot_id(),
        "song_feature_names": list(snap.song_feature_names),
    }
    for f in _ID_FIELDS:
        meta[f] = [str(v) for v in getattr(snap, f)]
    for f in _NAME_FIELDS:
        v = getattr(snap, f)
        meta[f] = None if v is None else ["" if x is None else str(x) for x in v]
    tmp = arrays_path.with_name(arrays_path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    tmp.replace(arrays_path)
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    tmp.replace(meta_path)
    return arrays_path


def load_snapshot(path: str | Path) -> GraphSnapshot:
    """Read a snapshot written by :func:`save_snapshot` (the same ``path``).

    Raises:
        FileNotFoundError: no saved snapshot there.
        ValueError: an unknown format, or contents that do not match the recorded id.
    """
    arrays_path, meta_path = snapshot_paths(path)
    if not meta_path.is_file() or not arrays_path.is_file():
        raise FileNotFoundError(f"no saved snapshot at {path} (want {arrays_path}, {meta_path})")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{meta_path}: unsupported snapshot format {meta.get('format')!r}")

    def obj(values: list[str]) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    with np.load(arrays_path, allow_pickle=False) as npz:
        arrays = {f: npz[f] for f in _ARRAY_FIELDS}
    names = {f: None if meta.get(f) is None else obj(meta[f]) for f in _NAME_FIELDS}
    snap = GraphSnapshot(
        **{f: obj(meta[f]) for f in _ID_FIELDS},
        **arrays,
        song_feature_names=list(meta["song_feature_names"]),
        genre_names=names["genre_names"],
        song_names=names["song_names"],
        artist_names=names["artist_names"],
        playlist_names=names["playlist_names"],
    )
    if snap.snapshot_id() != meta.get("snapshot_id"):
        raise ValueError(f"{arrays_path}: contents do not match the recorded snapshot id")
    return snap
