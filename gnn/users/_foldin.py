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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from gnn.core._recommender import Recommender, top_k
from gnn.explain._attribution import Attribution, PairExplanation
from gnn.graph._data import TrainData, build_train_data
from gnn.graph._snapshot import GraphSnapshot
from gnn.users._baselines import EASE, ItemKNN, LinearBlend, RP3beta
from gnn.users._diversity import cap_ranked, song_artists
from gnn.users._explained import POOL, Explained, _exact, writeback_rows
from gnn.users._hybrid import TasteHybrid
from gnn.users._inductive import LIKED_BY, UserEdges, UserEncoder, user_encoder
from gnn.users._models import LISTENED_BY
from graphdb import RecommendationRow

#: The models whose score is a fixed function of the user's history row.
FOLDABLE = (EASE, ItemKNN, RP3beta, LinearBlend, TasteHybrid)


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


def prepare_fold_in(rec: Recommender, observed: TrainData) -> None:
    """Build now what :func:`fold_in` of ``rec`` over ``observed`` (the serving view) would
    build on its first call: a graph model's cached layer states (one full forward pass)."""
    if _inductive(rec):
        user_encoder(rec.model, observed)  # type: ignore[attr-defined]


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
    observed: TrainData | None = None,
    recompute: str = "ego",
    new_user: str = "fit",
    max_per_artist: int | None = None,
) -> FoldIn:
    """Top-``k`` for ``user_id`` from ``plays`` (song id -> play count, the user's current
    listening); songs outside ``snap`` are ignored and listed. ``candidates_mask`` (bool
    [num_songs]) restricts the candidates (rules); played songs are never recommended;
    ``max_per_artist``: at most that many songs of one artist, cut before the top ``k``
    (``gnn.users.cap_ranked``), so evidence is computed for the ``k`` songs shown only.

    ``explain`` (graph models only; linear evidence is exact and always given): compute the
    gradient x attention evidence of the user's own edges. ``skips`` (song id -> skipped
    plays, graph models only): the skip rate is one of the user's node features.

    Graph models only: ``observed`` is the graph of every play of ``snap`` (``prepare(snap)
    .full()``, built when not given; the serving view); ``recompute`` "ego" encodes the user
    from their edges over that graph's cached states (:mod:`gnn.users._inductive`), "full"
    rebuilds the graph with the user's plays and runs the whole model (the reference, about a
    second); ``new_user`` "fit" fits a new user's ID embedding to their plays, "mean" gives
    them the mean trained row.

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
        if recompute not in ("ego", "full") or new_user not in ("fit", "mean"):
            raise ValueError(
                f"recompute must be ego or full, new_user fit or mean (got {recompute!r}, "
                f"{new_user!r})"
            )
        return _fold_in_graph(
            rec, snap, user_id, known, skipped, k, candidates_mask, explain, ignored,
            observed=observed, recompute=recompute, new_user=new_user, cap=max_per_artist,
        )  # fmt: skip
    one, view = _user_snapshot(snap, user_id, known)
    users = np.array([0])
    ids, scores = _ranked(
        lambda kk: rec.recommend(users, kk, view, candidates_mask=candidates_mask),
        snap, k, max_per_artist,
    )  # fmt: skip
    expl = _exact(rec, view, users, ids, pool=POOL, played=10)
    rows, _ = writeback_rows(
        one, Explained(users=users, songs=ids, scores=scores, explanations=expl, method="exact")
    )
    return FoldIn(rows, sorted(ignored))


def _ranked(
    recommend: Callable[[int], tuple[np.ndarray, np.ndarray]],
    snap: GraphSnapshot,
    k: int,
    cap: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """One user's top ``k`` (ids, scores [1, <=k]) from ``recommend(kk)`` (their top ``kk``),
    at most ``cap`` per artist: ``max(10k, 100)`` candidates cut, the whole catalogue when
    that leaves fewer than ``k`` (as :func:`gnn.users._diversity.capped_recommend`)."""
    n = snap.num_songs
    kk = min(k if cap is None else max(10 * k, 100), n)
    ids, scores = recommend(kk)
    if cap is not None:
        artists = song_artists(snap)
        ids, scores, short = cap_ranked(ids, scores, artists, k, cap)
        if short[0] and kk < n:
            ids, scores, _ = cap_ranked(*recommend(n), artists, k, cap)
    keep = (ids[0] >= 0) & np.isfinite(scores[0])
    return ids[:, keep], scores[:, keep]


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
    *,
    observed: TrainData | None,
    recompute: str,
    new_user: str,
    cap: int | None,
) -> FoldIn:
    """EnhancedGAT's list for a user from their current plays; see :func:`fold_in`."""
    if recompute == "full":
        return _fold_in_full(
            rec, snap, user_id, known, skips, k, candidates_mask, explain, ignored, cap
        )
    model = rec.model  # type: ignore[attr-defined]
    if observed is None:
        observed = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    enc = user_encoder(model, observed)
    where = np.flatnonzero(snap.user_ids == user_id)
    u = int(where[0]) if len(where) else None
    edges = enc.edges(known, skips, u)
    if u is not None:  # a user the model was trained with keeps their trained ID embedding
        id_emb = enc.id_embedding(u)
    elif new_user == "fit":
        id_emb = enc.fit_id_embedding(edges)
    else:
        id_emb = enc.id_embedding(None)
    masks = None
    if explain:  # one encoding serves the scores and the evidence's backward pass
        masks = {
            LISTENED_BY: torch.ones(len(edges.songs), requires_grad=True),
            LIKED_BY: torch.ones(len(edges.genres), requires_grad=True),
        }
        user = enc.encode(edges, id_emb, masks)
    else:
        with torch.no_grad():
            user = enc.encode(edges, id_emb)
    with torch.no_grad():
        scores = enc.scores(user.detach()).numpy().astype(np.float32)[None, :]
    scores[0, edges.songs.numpy()] = -np.inf  # played songs are never recommended
    if candidates_mask is not None:
        scores[:, ~np.asarray(candidates_mask, dtype=bool).reshape(-1)] = -np.inf
    ids, top = _ranked(lambda kk: top_k(scores, kk), snap, k, cap)
    if ids.shape[1] == 0:
        return FoldIn([], sorted(ignored))
    if not explain:
        rows = [
            RecommendationRow(user_id=user_id, song_id=str(snap.song_ids[i]), rank=r + 1, score=s)
            for r, (i, s) in enumerate(zip(ids[0].tolist(), top[0].tolist(), strict=True))
        ]
        return FoldIn(rows, sorted(ignored))
    one, _ = _user_snapshot(snap, user_id, known)  # the truth checks see the current plays
    assert masks is not None
    expl = [_user_side_evidence(enc, edges, user, masks, ids[0])]
    rows, _ = writeback_rows(
        one, Explained(users=np.array([0]), songs=ids, scores=top, explanations=expl)
    )
    return FoldIn(rows, sorted(ignored))


def _user_side_evidence(
    enc: UserEncoder,
    edges: UserEdges,
    user: torch.Tensor,
    masks: Mapping[tuple[str, str, str], torch.Tensor],
    songs: np.ndarray,
) -> list[PairExplanation]:
    """Gradient x input on masks of the user's own edges (played songs, liked genres), per
    recommended song: the user side of :class:`gnn.explain.GradientExplainer`, on the user's
    ego network (the song side is the cached graph's and is not attributed here). ``user`` is
    the user's embedding encoded with ``masks``."""
    # one batched backward: row r is the gradient of <h_u, h_{songs[r]}> (song side fixed)
    g_song, g_genre = torch.autograd.grad(
        user,
        [masks[LISTENED_BY], masks[LIKED_BY]],
        grad_outputs=enc.song_emb[torch.as_tensor(songs)],
        is_grads_batched=True,
        allow_unused=True,
    )
    out = []
    played = edges.songs.numpy()
    genres = edges.genres.numpy()
    for r in range(len(songs)):
        v_song = np.zeros(len(played)) if g_song is None else g_song[r].numpy().astype(np.float64)
        v_genre = (
            np.zeros(len(genres)) if g_genre is None else g_genre[r].numpy().astype(np.float64)
        )
        items = [
            Attribution("played", "Song", "song", int(s), float(v))
            for s, v in zip(played.tolist(), v_song.tolist(), strict=True)
        ] + [
            Attribution("genre_affinity", "Genre", "genre", int(g), float(v))
            for g, v in zip(genres.tolist(), v_genre.tolist(), strict=True)
        ]
        items = sorted((a for a in items if a.weight > 0), key=lambda a: -a.weight)[:POOL]
        ranked = played[np.argsort(-v_song, kind="stable")[:10]].astype(np.int64)
        out.append(PairExplanation(items, ranked))
    return out


def _fold_in_full(
    rec: Recommender,
    snap: GraphSnapshot,
    user_id: str,
    known: Mapping[int, int],
    skips: Mapping[int, int],
    k: int,
    candidates_mask: np.ndarray | None,
    explain: bool,
    ignored: list[str],
    cap: int | None = None,
) -> FoldIn:
    """The reference the ego encoding approximates: the observed graph rebuilt with the user's
    current plays (a new user appended with the mean ID row) and every representation
    recomputed (one full forward pass; evidence: one backward pass over the graph)."""
    from gnn.explain import GradientExplainer

    now, u = with_user_plays(snap, user_id, known, skips)
    view = build_train_data(now, np.ones(now.num_plays, dtype=bool))
    model = rec.model  # type: ignore[attr-defined]
    saved = getattr(rec, "_cache", None)  # the embeddings of the serving view stay cached
    users = np.array([u])
    try:
        with _user_rows(model, now.num_users):
            model.eval()
            ids, scores = _ranked(
                lambda kk: rec.recommend(users, kk, view, candidates_mask=candidates_mask),
                now, k, cap,
            )  # fmt: skip
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
