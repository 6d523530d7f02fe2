"""What the exporter reads out of Neo4j: integer-indexed arrays, nothing model-specific.

``GraphSnapshot`` is the contract between the Neo4j export (``gnn._export``) and everything
that learns or evaluates (split, ``HeteroData`` building, models, baselines, harness).
Every node type has a dense index ``0..n-1``; ``*_ids`` map an index back to the graph id.
Plays are kept one row per play (with timestamps) so that splits can be made by time and the
training graph built from the training period only: the held-out period never leaks into
edges or into node features such as play counts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

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
