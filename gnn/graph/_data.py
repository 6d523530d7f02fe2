"""Temporal split and the training views built from a :class:`GraphSnapshot`.

Split protocol (per user, by time, never a random edge split): each user's plays are sorted by
timestamp; the last ``test_frac`` of them form the test period, the ``val_frac`` before that the
validation period, the rest the training period. A model is fitted on the training view only.
Validation ranks with the training view as the observed history; test ranks with training +
validation as the observed history (what the user had played before the test period), so no
test-period play ever reaches a model, its graph or its node features.

Relevant items for a period are the songs the user played in that period but never before it;
candidates are all songs the user had not played before the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from gnn.graph._snapshot import GraphSnapshot

# Edge types of the heterogeneous graph, each with its named reverse.
EDGE_TYPES: dict[tuple[str, str, str], tuple[str, str, str]] = {
    ("user", "listened", "song"): ("song", "listened_by", "user"),
    ("song", "by", "artist"): ("artist", "performs", "song"),
    ("song", "in_genre", "genre"): ("genre", "has_song", "song"),
    ("artist", "in_genre", "genre"): ("genre", "has_artist", "artist"),
    ("user", "likes", "genre"): ("genre", "liked_by", "user"),
    ("playlist", "contains", "song"): ("song", "in_playlist", "playlist"),
}


@dataclass
class Split:
    """Boolean masks over the snapshot's plays: train, validation and test periods."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def observed_for(self, phase: str) -> np.ndarray:
        """The plays a model may see when ranking for ``phase`` ("val" or "test")."""
        if phase == "val":
            return self.train
        if phase == "test":
            return self.train | self.val
        raise ValueError(f"phase must be 'val' or 'test' (got {phase!r})")

    def target_for(self, phase: str) -> np.ndarray:
        if phase == "val":
            return self.val
        if phase == "test":
            return self.test
        raise ValueError(f"phase must be 'val' or 'test' (got {phase!r})")


def temporal_split(snap: GraphSnapshot, test_frac: float = 0.2, val_frac: float = 0.1) -> Split:
    """Per-user temporal split of plays (ties broken by play order in the snapshot)."""
    if not (0 <= test_frac < 1 and 0 <= val_frac < 1 and test_frac + val_frac < 1):
        raise ValueError(f"bad split fractions test={test_frac} val={val_frac}")
    n = snap.num_plays
    order = np.lexsort((np.arange(n), snap.play_ts, snap.play_user))
    users = snap.play_user[order]
    counts = np.bincount(users, minlength=snap.num_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[users]
    size = counts[users]
    n_test = np.floor(size * test_frac).astype(np.int64)
    n_val = np.floor(size * val_frac).astype(np.int64)
    phase = np.zeros(n, dtype=np.int8)
    phase[rank >= size - n_test] = 2
    phase[(rank >= size - n_test - n_val) & (rank < size - n_test)] = 1
    out = np.empty(n, dtype=np.int8)
    out[order] = phase
    return Split(train=out == 0, val=out == 1, test=out == 2)


@dataclass
class TrainData:
    """The observed part of the graph for one phase: a PyG graph and a user-song matrix.

    Attributes:
        hetero: ``HeteroData`` with node features and the edge types of :data:`EDGE_TYPES`,
            built from the observed plays only.
        matrix: ``scipy.sparse.csr_matrix`` [num_users, num_songs] of play counts.
        snapshot: the snapshot the view was built from (for ids, names and static edges).
        play_mask: which plays of the snapshot were observed.
    """

    hetero: HeteroData
    matrix: sp.csr_matrix
    snapshot: GraphSnapshot
    play_mask: np.ndarray

    @property
    def num_users(self) -> int:
        return self.snapshot.num_users

    @property
    def num_songs(self) -> int:
        return self.snapshot.num_songs


def interaction_matrix(snap: GraphSnapshot, mask: np.ndarray) -> sp.csr_matrix:
    """Play counts per (user, song) over the masked plays."""
    m = sp.coo_matrix(
        (np.ones(int(mask.sum()), dtype=np.float32), (snap.play_user[mask], snap.play_song[mask])),
        shape=(snap.num_users, snap.num_songs),
    ).tocsr()
    m.sum_duplicates()
    return m


def genre_multi_hot(snap: GraphSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """Weighted genre membership of songs [S, G] and artists [A, G]."""
    song_g = np.zeros((snap.num_songs, snap.num_genres), dtype=np.float32)
    song_g[snap.song_genre[0], snap.song_genre[1]] = snap.song_genre_weight
    art_g = np.zeros((snap.num_artists, snap.num_genres), dtype=np.float32)
    art_g[snap.artist_genre[0], snap.artist_genre[1]] = snap.artist_genre_weight
    return song_g, art_g


def user_play_stats(matrix: sp.csr_matrix, snap: GraphSnapshot, mask: np.ndarray) -> np.ndarray:
    """The user features that count plays, before standardisation: log plays, log distinct
    songs, skip rate (``matrix``: the masked play counts; shared with fold-in, which computes
    them for one user's current plays).

    Shapes:
        -> float64 [num_users, 3]
    """
    user_plays = np.asarray(matrix.sum(axis=1)).ravel()
    user_distinct = np.diff(matrix.indptr).astype(np.float32)
    skips = np.bincount(
        snap.play_user[mask], weights=snap.play_skipped[mask], minlength=matrix.shape[0]
    )
    skip_rate = skips / np.maximum(user_plays, 1)
    return np.stack([np.log1p(user_plays), np.log1p(user_distinct), skip_rate], axis=1)


def _standardise(x: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=0, keepdims=True)
    sd = x.std(axis=0, keepdims=True)
    sd[sd == 0] = 1.0
    return ((x - mu) / sd).astype(np.float32)


def _edges(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.array(a, dtype=np.int64, copy=True), dtype=torch.long)


def build_train_data(snap: GraphSnapshot, mask: np.ndarray) -> TrainData:
    """Build the observed graph for the masked plays.

    Node features (every statistic from the observed plays only):
        user: log plays, log distinct songs, skip rate, genre share of plays [G]
        song: static content features, log plays, log listeners, genre multi-hot [G]
        artist: log plays, genre multi-hot [G]
        genre: one-hot identity [G]
        playlist: log number of tracks
    """
    mask = np.asarray(mask, dtype=bool)
    matrix = interaction_matrix(snap, mask)
    song_g, art_g = genre_multi_hot(snap)
    U, S, A, G = snap.num_users, snap.num_songs, snap.num_artists, snap.num_genres

    user_stats = user_play_stats(matrix, snap, mask)
    user_genre = matrix @ song_g
    norm = user_genre.sum(axis=1, keepdims=True)
    user_genre = np.divide(user_genre, norm, out=np.zeros_like(user_genre), where=norm > 0)

    song_plays = np.asarray(matrix.sum(axis=0)).ravel()
    song_listeners = np.diff(matrix.tocsc().indptr).astype(np.float32)
    art_plays = np.bincount(
        snap.song_artist[1], weights=song_plays[snap.song_artist[0]], minlength=A
    )

    data = HeteroData()
    data["user"].x = torch.from_numpy(
        np.hstack(
            [
                _standardise(user_stats),
                user_genre.astype(np.float32),
            ]
        )
    )
    static = snap.song_features.astype(np.float32)
    if static.ndim != 2 or static.shape[0] != S:
        static = np.zeros((S, 0), dtype=np.float32)
    song_stats = np.stack([np.log1p(song_plays), np.log1p(song_listeners)], axis=1)
    data["song"].x = torch.from_numpy(
        np.hstack(
            [_standardise(static) if static.shape[1] else static, _standardise(song_stats), song_g]
        )
    )
    data["artist"].x = torch.from_numpy(
        np.hstack([_standardise(np.log1p(art_plays)[:, None]), art_g])
    )
    data["genre"].x = torch.eye(G)
    pl_sizes = np.bincount(snap.playlist_song[0], minlength=snap.num_playlists).astype(np.float32)
    data["playlist"].x = torch.from_numpy(np.log1p(pl_sizes)[:, None])
    for nt, n in (("user", U), ("song", S), ("artist", A), ("genre", G)):
        data[nt].num_nodes = n
    data["playlist"].num_nodes = snap.num_playlists

    coo = matrix.tocoo()
    ug = sp.coo_matrix(user_genre)
    edges = {
        ("user", "listened", "song"): (np.vstack([coo.row, coo.col]), np.log1p(coo.data)),
        ("song", "by", "artist"): (snap.song_artist, None),
        ("song", "in_genre", "genre"): (snap.song_genre, snap.song_genre_weight),
        ("artist", "in_genre", "genre"): (snap.artist_genre, snap.artist_genre_weight),
        ("user", "likes", "genre"): (np.vstack([ug.row, ug.col]), ug.data),
        ("playlist", "contains", "song"): (snap.playlist_song, None),
    }
    for et, (ei, w) in edges.items():
        rev = EDGE_TYPES[et]
        ei = np.asarray(ei, dtype=np.int64).reshape(2, -1)
        data[et].edge_index = _edges(ei)
        data[rev].edge_index = _edges(ei[::-1])
        if w is not None:
            wt = torch.as_tensor(np.asarray(w, dtype=np.float32))
            data[et].edge_weight = wt
            data[rev].edge_weight = wt
    return TrainData(hetero=data, matrix=matrix, snapshot=snap, play_mask=mask)


def relevant_items(snap: GraphSnapshot, split: Split, phase: str) -> list[np.ndarray]:
    """Per user, the songs played in ``phase`` that were never played before it."""
    observed = interaction_matrix(snap, split.observed_for(phase))
    target = interaction_matrix(snap, split.target_for(phase))
    out: list[np.ndarray] = []
    for u in range(snap.num_users):
        t = target.indices[target.indptr[u] : target.indptr[u + 1]]
        o = observed.indices[observed.indptr[u] : observed.indptr[u + 1]]
        out.append(np.setdiff1d(t, o, assume_unique=True))
    return out


def random_snapshot(
    num_users: int = 20,
    num_songs: int = 50,
    num_artists: int = 5,
    num_genres: int = 3,
    plays_per_user: int = 30,
    seed: int = 0,
) -> GraphSnapshot:
    """A small random snapshot for tests and examples (no Neo4j needed)."""
    rng = np.random.default_rng(seed)
    P = num_users * plays_per_user
    song_genre_song = np.arange(num_songs)
    return GraphSnapshot(
        user_ids=np.array([f"U{i}" for i in range(num_users)], dtype=object),
        song_ids=np.array([f"S{i}" for i in range(num_songs)], dtype=object),
        artist_ids=np.array([f"A{i}" for i in range(num_artists)], dtype=object),
        genre_ids=np.array([f"G{i}" for i in range(num_genres)], dtype=object),
        playlist_ids=np.array([], dtype=object),
        play_user=np.repeat(np.arange(num_users), plays_per_user).astype(np.int64),
        play_song=rng.integers(0, num_songs, P).astype(np.int64),
        play_ts=(np.tile(np.arange(plays_per_user), num_users) * 60_000).astype(np.int64),
        play_ms=np.full(P, 180_000, dtype=np.int64),
        play_session=np.repeat(np.arange(num_users), plays_per_user).astype(np.int64),
        play_skipped=np.zeros(P, dtype=bool),
        song_artist=np.vstack([np.arange(num_songs), np.arange(num_songs) % num_artists]),
        song_genre=np.vstack([song_genre_song, song_genre_song % num_genres]),
        song_genre_weight=np.ones(num_songs, dtype=np.float32),
        artist_genre=np.vstack([np.arange(num_artists), np.arange(num_artists) % num_genres]),
        artist_genre_weight=np.ones(num_artists, dtype=np.float32),
        playlist_song=np.zeros((2, 0), dtype=np.int64),
        playlist_song_pos=np.zeros(0, dtype=np.int64),
        song_features=np.zeros((num_songs, 0), dtype=np.float32),
    )
