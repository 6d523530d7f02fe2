"""Fold-in: a trained linear model scores a user from their current plays, without retraining.

For EASE^R, ItemKNN, RP3beta and their blend the score is ``x_u B`` with a fixed item-item
``B``, so a user's list is exactly what the model would give for their listening as it is now,
including plays posted after training and users created since. The user's plays (read from
the graph by the caller) become a one-user snapshot; the model's exact contributions give the
evidence, and the usual truth checks run against that snapshot, which holds exactly the
user's current plays: every ``played`` piece is a song they really played, and a genre share
is the share of their current plays. Songs the model does not know are ignored and listed.

The graph model (EnhancedGAT) is inductive: its user representation is message passing over
the user's edges. Fold-in rebuilds the observed graph from the training snapshot with this user's
plays replaced by their current plays (a user created since training is appended, starting
from the mean of the trained user ID embeddings, so everything personal in their
representation comes from their edges), recomputes every representation with the trained
weights, and ranks. Node features (play counts, genre shares) are recomputed from the same
plays, exactly as ``build_train_data`` does for training. Evidence, when asked for, is the
usual gradient x attention attribution on that rebuilt graph, checked against the user's
current plays. Cost: one full forward pass (and one backward for evidence) per request.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from gnn.core._recommender import Recommender
from gnn.graph._data import TrainData, build_train_data
from gnn.graph._snapshot import GraphSnapshot
from gnn.users._baselines import EASE, ItemKNN, LinearBlend, RP3beta
from gnn.users._explained import POOL, Explained, _exact, writeback_rows
from graphdb import RecommendationRow

#: The models whose score is a fixed function of the user's history row.
FOLDABLE = (EASE, ItemKNN, RP3beta, LinearBlend)


def _inductive(rec: Recommender) -> bool:
    """A graph model whose user representation is recomputed from the user's edges
    (EnhancedGAT: an ``_InputEncoder`` per node type, message passing on every edge type)."""
    model = getattr(rec, "model", None)
    encoders = getattr(model, "encoders", None)
    return (
        model is not None
        and hasattr(model, "embed")
        and encoders is not None
        and "user" in encoders
        and hasattr(encoders["user"], "embedding")
    )


def foldable(rec: Recommender) -> bool:
    """Can ``rec`` score a user from plays it was not trained on?"""
    return isinstance(rec, FOLDABLE) or _inductive(rec)


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
    explain: bool = True,
    skips: Mapping[str, int] | None = None,
) -> FoldIn:
    """Top-``k`` for ``user_id`` from ``plays`` (song id -> play count, the user's current
    listening); songs outside ``snap`` are ignored and listed. ``candidates_mask`` (bool
    [num_songs]) restricts the candidates (rules); played songs are never recommended.

    ``explain`` (graph models only; linear evidence is exact and always given): compute the
    gradient x attention evidence, one backward pass over the graph. ``skips`` (song id ->
    skipped plays, graph models only): the skip rate is one of the user's node features.

    Raises:
        TypeError: ``rec`` can not fold in a user (see :func:`foldable`).
    """
    if not foldable(rec):
        names = ", ".join([*(c.name for c in FOLDABLE), "enhanced_gat"])
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
    if not isinstance(rec, FOLDABLE):
        skipped = {index[str(sid)]: int(n) for sid, n in (skips or {}).items() if str(sid) in index}
        return _fold_in_graph(
            rec, snap, user_id, known, skipped, k, candidates_mask, explain, ignored
        )
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


def with_user_plays(
    snap: GraphSnapshot,
    user_id: str,
    plays: Mapping[int, int],
    skips: Mapping[int, int] | None = None,
) -> tuple[GraphSnapshot, int]:
    """``snap`` with ``user_id``'s plays replaced by ``plays`` (song index -> count, of which
    ``skips`` were skipped), the user appended when new; returns it and the user's index.
    Plays get time 0 and session -1 (neither enters the observed graph)."""
    where = np.flatnonzero(snap.user_ids == user_id)
    u = int(where[0]) if len(where) else snap.num_users
    user_ids = (
        snap.user_ids if len(where) else np.append(snap.user_ids, np.array([user_id], dtype=object))
    )
    keep = snap.play_user != u
    songs = np.fromiter(plays.keys(), dtype=np.int64, count=len(plays))
    counts = np.fromiter(plays.values(), dtype=np.int64, count=len(plays))
    song = np.repeat(songs, counts)
    n = len(song)
    skipped = np.zeros(n, dtype=bool)
    if skips:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        for i, s in enumerate(songs.tolist()):
            skipped[starts[i] : starts[i] + min(int(skips.get(s, 0)), int(counts[i]))] = True

    def cat(old: np.ndarray, new: np.ndarray) -> np.ndarray:
        return np.concatenate([old[keep], new.astype(old.dtype)])

    out = dataclasses.replace(
        snap,
        user_ids=user_ids,
        play_user=cat(snap.play_user, np.full(n, u)),
        play_song=cat(snap.play_song, song),
        play_ts=cat(snap.play_ts, np.zeros(n)),
        play_ms=cat(snap.play_ms, np.zeros(n)),
        play_session=cat(snap.play_session, np.full(n, -1)),
        play_skipped=cat(snap.play_skipped, skipped),
    )
    return out, u


@contextlib.contextmanager
def _user_rows(model: torch.nn.Module, num_users: int) -> Iterator[None]:
    """While inside, ``model``'s user ID embedding has ``num_users`` rows: rows past the
    trained ones hold the mean trained user embedding (a new user's prior)."""
    enc = model.encoders["user"]  # type: ignore[index]
    old = enc.embedding
    extra = num_users - old.num_embeddings
    if extra <= 0:
        yield
        return
    w = old.weight.detach()
    enc.embedding = torch.nn.Embedding.from_pretrained(
        torch.cat([w, w.mean(0, keepdim=True).expand(extra, -1)]), freeze=True
    )
    try:
        yield
    finally:
        enc.embedding = old


def _fold_in_graph(
    rec: Recommender,
    snap: GraphSnapshot,
    user_id: str,
    known: Mapping[int, int],
    skips: Mapping[int, int],
    k: int,
    candidates_mask: np.ndarray | None,
    explain: bool,
    ignored: list[str],
) -> FoldIn:
    from gnn.explain import GradientExplainer

    now, u = with_user_plays(snap, user_id, known, skips)
    view = build_train_data(now, np.ones(now.num_plays, dtype=bool))
    model = rec.model  # type: ignore[attr-defined]
    saved = getattr(rec, "_cache", None)  # the embeddings of the serving view stay cached
    users = np.array([u])
    try:
        with _user_rows(model, now.num_users):
            model.eval()
            ids, scores = rec.recommend(
                users, min(k, now.num_songs), view, candidates_mask=candidates_mask
            )
            keep = (ids[0] >= 0) & np.isfinite(scores[0])
            ids, scores = ids[:, keep], scores[:, keep]
            expl = None
            if explain and ids.shape[1]:
                expl = GradientExplainer(model, view.hetero).explain(users, ids, top=5)
    finally:
        if hasattr(rec, "_cache"):
            rec._cache = saved  # type: ignore[attr-defined]
    if ids.shape[1] == 0:
        return FoldIn([], sorted(ignored))
    if expl is None:
        rows = [
            RecommendationRow(
                user_id=user_id, song_id=str(now.song_ids[i]), rank=r + 1, score=float(s)
            )
            for r, (i, s) in enumerate(zip(ids[0].tolist(), scores[0].tolist(), strict=True))
        ]
        return FoldIn(rows, sorted(ignored))
    rows, _ = writeback_rows(
        now, Explained(users=users, songs=ids, scores=scores, explanations=expl)
    )
    return FoldIn(rows, sorted(ignored))
