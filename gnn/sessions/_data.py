"""Next song in a listening session: the task, ordered sessions, the time split, prefix batches.

Task: given the songs played so far in the current session (and, optionally, the user and the
time of day), rank the song played next.

Data: sessions are rebuilt from a :class:`GraphSnapshot` (``play_session``, ordered by
``play_ts``); nothing here opens a driver.

Split (:func:`session_split`): a *global* time cut on session start times. The sessions that
start in the last ``test_frac`` of the period (by session count) are the test sessions, the
``val_frac`` before them validation, the rest training. For every user these are their last
sessions by time, and, unlike a per-user cut, no training session (so no transition count,
no neighbour session, no embedding) comes from after any test session.

Protocol (:func:`evaluate_sessions`): every position ``t >= 1`` of a held-out session is one
prediction: the prefix ``x_0..x_{t-1}`` (its last ``max_len`` songs go to the model), the user
and the hour of the target play are the context, ``x_t`` is the one relevant song. The
default (``exclude_seen=True``) matches serving (``predict_next`` never returns an input song):
songs already in the prefix are not candidates, and targets that repeat a prefix song (about
4% of test positions in the synthetic data) are left out and counted as ``n_repeats``. With
``exclude_seen=False`` every song is a candidate and every position counts. Candidates are
otherwise the whole catalogue (full ranking, no sampled negatives). Models are fitted on the
training sessions only; validation picks hyper-parameters and stops training early.

Metric keys: ``hit_rate@k``, ``mrr@k`` (definitions of ``gnn.core._metrics``: MRR is truncated at
k), ``coverage@k`` (share of the catalogue in any top-k list), ``n_positions``,
``n_sessions``, ``n_repeats``.

Serving: :func:`load_next_song_predictor` returns a run's fitted model, pickled whole in its
run folder (no Neo4j at predict time). In serving, the graph's ``FOLLOWED_BY`` aggregate is
the same statistic as the Markov model's transition counts, computed here from training
sessions only so that held-out sessions never reach a model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from gnn.graph._snapshot import GraphSnapshot

log = logging.getLogger(__name__)


_HOUR_MS = 3_600_000


#: Hours of the day (UTC); index ``HOURS`` means "unknown".
HOURS = 24


def hour_of_day(ms: np.ndarray | int) -> np.ndarray:
    """UTC hour 0..23 of epoch milliseconds."""
    return (np.asarray(ms, dtype=np.int64) // _HOUR_MS) % HOURS


@dataclass
class Sessions:
    """Ordered sessions in CSR form.

    Shapes (N sessions, P plays, S songs):
        indptr: int64 [N + 1]; the plays of session i are ``songs[indptr[i]:indptr[i+1]]``
        songs, ts: int64 [P] song index and epoch ms, in play order within each session
        user: int64 [N] user index; start: int64 [N] first play's epoch ms
        song_artist: int64 [S] an artist index per song (-1: none)
        song_ids: [S], user_ids: [U] graph ids
    """

    indptr: np.ndarray
    songs: np.ndarray
    ts: np.ndarray
    user: np.ndarray
    start: np.ndarray
    song_artist: np.ndarray
    song_ids: np.ndarray
    user_ids: np.ndarray
    num_artists: int

    @property
    def num_sessions(self) -> int:
        return len(self.user)

    @property
    def num_songs(self) -> int:
        return len(self.song_ids)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def subset(self, mask: np.ndarray) -> Sessions:
        """The sessions where ``mask`` is true (same catalogue and users)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.num_sessions,):
            raise ValueError(f"mask must have one entry per session: {self.num_sessions}")
        idx = np.flatnonzero(mask)
        lens = self.lengths[idx]
        take = _ranges(self.indptr[idx], lens)
        return Sessions(
            indptr=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
            songs=self.songs[take],
            ts=self.ts[take],
            user=self.user[idx],
            start=self.start[idx],
            song_artist=self.song_artist,
            song_ids=self.song_ids,
            user_ids=self.user_ids,
            num_artists=self.num_artists,
        )

    def transitions(self) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive (from, to) song pairs within sessions, int64 [T] each."""
        same = np.ones(len(self.songs), dtype=bool)
        same[self.indptr[:-1]] = False  # first play of a session has no predecessor
        nxt = np.flatnonzero(same)
        return self.songs[nxt - 1], self.songs[nxt]

    def play_counts(self) -> np.ndarray:
        """Plays per song, float64 [S]."""
        return np.bincount(self.songs, minlength=self.num_songs).astype(np.float64)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for every (s, n), vectorised."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def build_sessions(snap: GraphSnapshot) -> Sessions:
    """Rebuild ordered sessions from a snapshot's plays.

    Sessions are sorted by start time (first play), plays within a session by time; ties keep
    the snapshot's order.
    """
    n = snap.num_plays
    sess_start = np.full(int(snap.play_session.max(initial=-1)) + 1, np.iinfo(np.int64).max)
    np.minimum.at(sess_start, snap.play_session, snap.play_ts)
    order = np.lexsort(
        (np.arange(n), snap.play_ts, snap.play_session, sess_start[snap.play_session])
    )
    sess = snap.play_session[order]
    boundary = np.ones(n, dtype=bool)
    boundary[1:] = sess[1:] != sess[:-1]
    firsts = np.flatnonzero(boundary)
    artist = np.full(snap.num_songs, -1, dtype=np.int64)
    if snap.song_artist.size:
        sa = np.asarray(snap.song_artist, dtype=np.int64)
        artist[sa[0][::-1]] = sa[1][::-1]  # the first listed artist wins
    ts = snap.play_ts[order].astype(np.int64)
    return Sessions(
        indptr=np.concatenate([firsts, [n]]).astype(np.int64),
        songs=snap.play_song[order].astype(np.int64),
        ts=ts,
        user=snap.play_user[order][firsts].astype(np.int64),
        start=ts[firsts],
        song_artist=artist,
        song_ids=np.asarray(snap.song_ids),
        user_ids=np.asarray(snap.user_ids),
        num_artists=snap.num_artists,
    )


@dataclass
class SessionSplit:
    """Boolean masks over sessions and the two cut times (epoch ms) that made them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_from_ms: int
    test_from_ms: int

    def target_for(self, phase: str) -> np.ndarray:
        if phase == "val":
            return self.val
        if phase == "test":
            return self.test
        raise ValueError(f"phase must be 'val' or 'test' (got {phase!r})")

    def describe(self) -> dict[str, Any]:
        return {
            "split": "global time cut on session start",
            "val_from_ms": int(self.val_from_ms),
            "test_from_ms": int(self.test_from_ms),
            "sessions": {
                "train": int(self.train.sum()),
                "val": int(self.val.sum()),
                "test": int(self.test.sum()),
            },
        }


def session_split(
    sessions: Sessions, test_frac: float = 0.2, val_frac: float = 0.1
) -> SessionSplit:
    """Global time cut: the last ``test_frac`` of sessions by start time are test, the
    ``val_frac`` before them validation, the rest training (sessions starting at the same
    millisecond as a cut fall on the later side)."""
    if not (0 < test_frac < 1 and 0 <= val_frac < 1 and test_frac + val_frac < 1):
        raise ValueError(f"bad split fractions test={test_frac} val={val_frac}")
    n = sessions.num_sessions
    if n < 3:
        raise ValueError(f"need at least 3 sessions to split (got {n})")
    starts = np.sort(sessions.start)
    test_from = int(starts[min(n - 1, int(np.floor(n * (1 - test_frac))))])
    val_from = int(starts[min(n - 1, int(np.floor(n * (1 - test_frac - val_frac))))])
    test = sessions.start >= test_from
    val = (sessions.start >= val_from) & ~test
    return SessionSplit(
        train=~(test | val), val=val, test=test, val_from_ms=val_from, test_from_ms=test_from
    )


@dataclass
class Positions:
    """Prediction points of a set of sessions: target ``songs[indptr[session] + pos]``."""

    session: np.ndarray
    pos: np.ndarray
    n_repeats: int = 0

    def __len__(self) -> int:
        return len(self.session)


def positions(
    sessions: Sessions,
    *,
    exclude_seen: bool = True,
    max_positions: int | None = None,
    seed: int = 0,
) -> Positions:
    """Every position ``t >= 1`` of every session, as (session, t).

    Args:
        exclude_seen: leave out targets that repeat a song of their prefix (default True).
        max_positions: keep a seeded random sample of at most this many (default all).
    """
    lens = sessions.lengths
    counts = np.maximum(lens - 1, 0)
    sess = np.repeat(np.arange(sessions.num_sessions, dtype=np.int64), counts)
    pos = _ranges(np.ones_like(counts), counts)
    n_repeats = 0
    if exclude_seen and len(sess):
        rep = _is_repeat(sessions, sess, pos)
        n_repeats = int(rep.sum())
        sess, pos = sess[~rep], pos[~rep]
    if max_positions is not None and len(sess) > max_positions:
        pick = np.sort(np.random.default_rng(seed).choice(len(sess), max_positions, replace=False))
        sess, pos = sess[pick], pos[pick]
    return Positions(session=sess, pos=pos, n_repeats=n_repeats)


def _is_repeat(sessions: Sessions, sess: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Whether the target at each (session, pos) already occurs earlier in its session."""
    gidx = sessions.indptr[sess] + pos
    # Earliest occurrence of each (session, song): a target repeats iff that is earlier.
    all_sess = np.repeat(np.arange(sessions.num_sessions), sessions.lengths)
    key = all_sess * np.int64(sessions.num_songs) + sessions.songs
    order = np.lexsort((np.arange(len(key)), key))
    first_of = np.empty(len(key), dtype=np.int64)
    sk = key[order]
    new = np.ones(len(sk), dtype=bool)
    new[1:] = sk[1:] != sk[:-1]
    group_first = order[np.flatnonzero(new)]
    group_id = np.cumsum(new) - 1
    first_of[order] = group_first[group_id]
    return first_of[gidx] < gidx


@dataclass
class PrefixBatch:
    """A batch of prefixes, right-aligned: the last played song is ``items[:, -1]``.

    Shapes (B prefixes, L = max_len):
        items: int64 [B, L] song indices, -1 pads on the left
        user: int64 [B] user index, -1 unknown; hour: int64 [B] 0..23, -1 unknown
        seen_rows, seen_cols: int64 [M] every (prefix, song) pair of the *full* prefix
    """

    items: np.ndarray
    user: np.ndarray
    hour: np.ndarray
    seen_rows: np.ndarray
    seen_cols: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def make_batch(
    sessions: Sessions, sess: np.ndarray, pos: np.ndarray, max_len: int
) -> tuple[PrefixBatch, np.ndarray]:
    """The prefixes before (sess, pos) and their targets (int64 [B])."""
    b = len(sess)
    starts = sessions.indptr[sess]
    full = _ranges(starts, pos)
    rows = np.repeat(np.arange(b, dtype=np.int64), pos)
    cols = sessions.songs[full]
    take = np.minimum(pos, max_len)
    items = np.full((b, max_len), -1, dtype=np.int64)
    src = _ranges(starts + pos - take, take)
    r = np.repeat(np.arange(b, dtype=np.int64), take)
    c = _ranges(max_len - take, take)
    items[r, c] = sessions.songs[src]
    target_idx = starts + pos
    batch = PrefixBatch(
        items=items,
        user=sessions.user[sess],
        hour=hour_of_day(sessions.ts[target_idx]),
        seen_rows=rows,
        seen_cols=cols,
    )
    return batch, sessions.songs[target_idx]


def iter_batches(
    sessions: Sessions, pts: Positions, max_len: int, batch_size: int
) -> Iterator[tuple[PrefixBatch, np.ndarray]]:
    for lo in range(0, len(pts), batch_size):
        hi = min(lo + batch_size, len(pts))
        yield make_batch(sessions, pts.session[lo:hi], pts.pos[lo:hi], max_len)
