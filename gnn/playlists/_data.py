"""Playlist continuation, the RecSys Challenge 2018 setting: corpus, split and seed cases.

A snapshot's playlists become ordered track lists (:class:`PlaylistCorpus`). Whole playlists are
held out for validation and test (:func:`split_playlists`); models are fitted on the others.
Every held-out playlist with more than K tracks gives one case per bucket K in
:data:`BUCKETS`: its first K tracks by position (and its name) are revealed and the rest are to
be ranked (:func:`make_cases`). K = 0 reveals the name only. Unlike the challenge, where each
playlist is in one category, a playlist is scored in every bucket it qualifies for, so the
buckets compare the same playlists as far as their lengths allow.

Metrics per case, with the challenge's definitions (G the held-out tracks, R the ranked list of
:data:`LIST_LENGTH` = 500 tracks, seeds never in R):

``r_precision``
    ``(|R[:|G|] ∩ G| + 0.25 * |A(R[:|G|] \\ G) ∩ A(G)|) / |G|``: exact hits in the first |G|
    places, plus a quarter for each distinct artist of a wrong track there that is an artist of
    a held-out track (the artist partial credit of the challenge rules). ``A`` is a song's
    primary artist (lowest artist index of its ``BY`` edges); songs without one get no credit.
``ndcg``
    ``DCG / IDCG`` with ``DCG = rel_1 + sum_{i>=2} rel_i / log2(i)`` over R and
    ``IDCG = 1 + sum_{i=2}^{|G ∩ R|} 1 / log2(i)`` (0 when R has no hit): the challenge's
    formula, whose ideal list has as many hits as R found, so it rewards order, not recall.
``clicks``
    ``floor((rank of the first hit - 1) / 10)``, 51 when R has no hit (lower is better).
``recall@n``
    ``|R[:n] ∩ G| / |G|`` for n in :data:`RECALL_AT`.
``ndcg@10``
    The usual top-of-list NDCG: ``sum_{i<=10} rel_i / log2(i + 1)`` over the ideal
    ``sum_{i<=min(|G|, 10)} 1 / log2(i + 1)``: what a 10-track answer (the API's default)
    is worth, judged against everything held out.

The challenge's best main-track result on the real Million Playlist Dataset was R-precision
0.224 and NDCG 0.395 (Zamani et al., 2019): context, not a like-for-like comparison.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gnn.graph._snapshot import GraphSnapshot

log = logging.getLogger(__name__)


_NON_WORD = re.compile(r"[^0-9a-z]+")


#: Seed-track counts K: K = 0 gives the name only.
BUCKETS: tuple[int, ...] = (0, 1, 5, 10, 25)


def normalize_name(name: str | None) -> str:
    """Lower case, accents and punctuation removed, spaces collapsed (``"Chill  Rock!"`` ->
    ``"chill rock"``); emoji and other symbols drop out."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return _NON_WORD.sub(" ", text.lower()).strip()


def name_tokens(name: str | None) -> list[str]:
    """The distinct words of a normalised name, in order."""
    return list(dict.fromkeys(normalize_name(name).split()))


@dataclass
class PlaylistCorpus:
    """A snapshot's playlists as ordered, de-duplicated track lists.

    Shapes (S songs, P playlists):
        tracks: P int64 arrays of song indices, in position order, each song once
        names: P strings ("" when unnamed or the snapshot has no names)
        song_artist: int64 [S] primary artist index, -1 when none
        song_artist_edges, song_genre_edges: int64 [2, E] (song, artist|genre); genre weights
            float32 [E_sg]
    """

    song_ids: np.ndarray
    playlist_ids: np.ndarray
    tracks: list[np.ndarray]
    names: list[str]
    song_artist: np.ndarray
    num_artists: int
    num_genres: int
    song_artist_edges: np.ndarray
    song_genre_edges: np.ndarray
    song_genre_weight: np.ndarray

    @property
    def num_songs(self) -> int:
        return len(self.song_ids)

    @property
    def num_playlists(self) -> int:
        return len(self.tracks)

    @classmethod
    def from_snapshot(cls, snap: GraphSnapshot) -> PlaylistCorpus:
        ps = np.asarray(snap.playlist_song, dtype=np.int64).reshape(2, -1)
        pos = np.asarray(snap.playlist_song_pos, dtype=np.int64)
        # by playlist, then position (unset positions, -1, keep their export order), then song
        order = np.lexsort((ps[1], np.where(pos < 0, np.iinfo(np.int64).max, pos), ps[0]))
        pl, song = ps[0][order], ps[1][order]
        bounds = np.searchsorted(pl, np.arange(snap.num_playlists + 1))
        tracks = []
        for p in range(snap.num_playlists):
            t = song[bounds[p] : bounds[p + 1]]
            _, first = np.unique(t, return_index=True)
            tracks.append(t[np.sort(first)])
        names = (
            [""] * snap.num_playlists
            if snap.playlist_names is None
            else ["" if n is None else str(n) for n in snap.playlist_names]
        )
        sa = np.asarray(snap.song_artist, dtype=np.int64).reshape(2, -1)
        primary = np.full(snap.num_songs, -1, dtype=np.int64)
        if sa.shape[1]:
            o = np.lexsort((-sa[1], sa[0]))  # last write wins: the lowest artist index
            primary[sa[0][o]] = sa[1][o]
        return cls(
            song_ids=np.asarray(snap.song_ids, dtype=object),
            playlist_ids=np.asarray(snap.playlist_ids, dtype=object),
            tracks=tracks,
            names=names,
            song_artist=primary,
            num_artists=snap.num_artists,
            num_genres=snap.num_genres,
            song_artist_edges=sa,
            song_genre_edges=np.asarray(snap.song_genre, dtype=np.int64).reshape(2, -1),
            song_genre_weight=np.asarray(snap.song_genre_weight, dtype=np.float32),
        )


@dataclass(frozen=True)
class PlaylistSplit:
    """Playlist indices: models see ``train``; ``val`` and ``test`` are held out whole."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int


def split_playlists(
    corpus: PlaylistCorpus, *, val_frac: float = 0.1, test_frac: float = 0.1, seed: int = 0
) -> PlaylistSplit:
    """Hold out random playlists (with at least one track) for validation and test.

    Each held-out part gets at least one playlist when there are at least three non-empty
    playlists; empty playlists are left out everywhere.

    Raises:
        ValueError: fractions outside [0, 1) or summing to 1 or more; fewer than three
            non-empty playlists.
    """
    for name, f in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1) (got {f})")
    if val_frac + test_frac >= 1.0:
        raise ValueError(f"val_frac + test_frac must be < 1 (got {val_frac + test_frac})")
    usable = np.array([p for p, t in enumerate(corpus.tracks) if len(t)], dtype=np.int64)
    if len(usable) < 3:
        raise ValueError(f"need at least 3 non-empty playlists to split (got {len(usable)})")
    perm = np.random.default_rng(seed).permutation(usable)
    n_test = max(1, round(test_frac * len(usable))) if test_frac > 0 else 0
    n_val = max(1, round(val_frac * len(usable))) if val_frac > 0 else 0
    return PlaylistSplit(
        train=np.sort(perm[n_test + n_val :]),
        val=np.sort(perm[n_test : n_test + n_val]),
        test=np.sort(perm[:n_test]),
        seed=seed,
    )


@dataclass
class Cases:
    """Continuation cases: for case i, ``seeds[i]`` (the first ``k[i]`` tracks of playlist
    ``playlist[i]``) and ``names[i]`` are revealed; ``targets[i]`` are to be ranked."""

    playlist: np.ndarray
    k: np.ndarray
    seeds: list[np.ndarray]
    targets: list[np.ndarray]
    names: list[str]

    def __len__(self) -> int:
        return len(self.playlist)

    def take(self, idx: np.ndarray) -> Cases:
        return Cases(
            self.playlist[idx],
            self.k[idx],
            [self.seeds[i] for i in idx],
            [self.targets[i] for i in idx],
            [self.names[i] for i in idx],
        )


def make_cases(
    corpus: PlaylistCorpus, playlists: np.ndarray, buckets: Sequence[int] = BUCKETS
) -> Cases:
    """One case per playlist and bucket K where the playlist has more than K tracks."""
    pl, ks, seeds, targets, names = [], [], [], [], []
    for p in np.asarray(playlists, dtype=np.int64).tolist():
        t = corpus.tracks[p]
        for k in buckets:
            if len(t) > k:
                pl.append(p)
                ks.append(k)
                seeds.append(t[:k])
                targets.append(t[k:])
                names.append(corpus.names[p])
    return Cases(np.array(pl, dtype=np.int64), np.array(ks, dtype=np.int64), seeds, targets, names)


RankFn = Callable[[Sequence[np.ndarray], Sequence[str]], np.ndarray]
