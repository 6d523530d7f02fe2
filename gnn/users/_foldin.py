"""Fold-in: a trained linear model scores a user from their current plays, without retraining.

For EASE^R, ItemKNN, RP3beta and their blend the score is ``x_u B`` with a fixed item-item
``B``, so a user's list is exactly what the model would give for their listening as it is now,
including plays posted after training and users created since. The user's plays (read from
the graph by the caller) become a one-user snapshot; the model's exact contributions give the
evidence, and the usual truth checks run against that snapshot, which holds exactly the
user's current plays: every ``played`` piece is a song they really played, and a genre share
is the share of their current plays. Songs the model does not know are ignored and listed.

The graph models (EnhancedGAT) learn an embedding per user, so a user unknown at training has
none; they are not folded in here (the caller serves them the live or popular path).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gnn.core._recommender import Recommender
from gnn.graph._data import TrainData
from gnn.graph._snapshot import GraphSnapshot
from gnn.users._baselines import EASE, ItemKNN, LinearBlend, RP3beta
from gnn.users._explained import POOL, Explained, _exact, writeback_rows
from graphdb import RecommendationRow

#: The models whose score is a fixed function of the user's history row.
FOLDABLE = (EASE, ItemKNN, RP3beta, LinearBlend)


def foldable(rec: Recommender) -> bool:
    """Can ``rec`` score a user from a history row it was not trained on?"""
    return isinstance(rec, FOLDABLE)


@dataclass(frozen=True)
class FoldIn:
    """One user's fold-in list: rows as written back (reason, evidence), songs ignored."""

    rows: list[RecommendationRow]
    ignored: list[str]


def _user_snapshot(
    snap: GraphSnapshot, user_id: str, plays: Mapping[int, int]
) -> tuple[GraphSnapshot, TrainData]:
    songs = np.fromiter(plays.keys(), dtype=np.int64, count=len(plays))
    counts = np.fromiter(plays.values(), dtype=np.int64, count=len(plays))
    song = np.repeat(songs, counts)
    n = len(song)
    one = dataclasses.replace(
        snap,
        user_ids=np.array([user_id], dtype=object),
        play_user=np.zeros(n, dtype=snap.play_user.dtype),
        play_song=song.astype(snap.play_song.dtype),
        play_ts=np.zeros(n, dtype=snap.play_ts.dtype),
        play_ms=np.zeros(n, dtype=snap.play_ms.dtype),
        play_session=np.zeros(n, dtype=snap.play_session.dtype),
        play_skipped=np.zeros(n, dtype=snap.play_skipped.dtype),
    )
    matrix = sp.csr_matrix(
        (counts.astype(np.float32), (np.zeros(len(songs), dtype=np.int64), songs)),
        shape=(1, snap.num_songs),
    )
    view = TrainData(hetero=None, matrix=matrix, snapshot=one, play_mask=np.ones(n, dtype=bool))  # type: ignore[arg-type]
    return one, view


def fold_in(
    rec: Recommender,
    snap: GraphSnapshot,
    user_id: str,
    plays: Mapping[str, int],
    k: int,
    *,
    song_index: Mapping[str, int] | None = None,
    candidates_mask: np.ndarray | None = None,
) -> FoldIn:
    """Top-``k`` for ``user_id`` from ``plays`` (song id -> play count, the user's current
    listening); songs outside ``snap`` are ignored and listed. ``candidates_mask`` (bool
    [num_songs]) restricts the candidates (rules); played songs are never recommended.

    Raises:
        TypeError: ``rec`` is not a linear model (see :func:`foldable`).
    """
    if not foldable(rec):
        names = ", ".join(c.name for c in FOLDABLE)
        raise TypeError(f"{rec.name} cannot fold in a user (only {names})")
    index = song_index or {str(s): i for i, s in enumerate(snap.song_ids)}
    known: dict[int, int] = {}
    ignored: list[str] = []
    for sid, n in plays.items():
        i = index.get(str(sid))
        if i is None:
            ignored.append(str(sid))
        elif n > 0:
            known[i] = known.get(i, 0) + int(n)
    if not known:
        return FoldIn([], sorted(ignored))
    one, view = _user_snapshot(snap, user_id, known)
    users = np.array([0])
    ids, scores = rec.recommend(
        users, min(k, snap.num_songs), view, candidates_mask=candidates_mask
    )
    keep = (ids[0] >= 0) & np.isfinite(scores[0])
    ids, scores = ids[:, keep], scores[:, keep]
    expl = _exact(rec, view, users, ids, pool=POOL, played=10)
    rows, _ = writeback_rows(
        one, Explained(users=users, songs=ids, scores=scores, explanations=expl, method="exact")
    )
    return FoldIn(rows, sorted(ignored))
