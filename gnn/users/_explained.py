"""Recommendations with explanations, turned into the rows graphdb writes back.

Two kinds of explanation, one shape (:class:`Explained`):

* graph models with per-edge-type attention (EnhancedGAT): edge-mask gradient attributions
  (``gnn.explain``), the first-order effect of each edge on the score;
* linear models (EASE^R, ItemKNN): exact, since ``score(u, i) = sum_j x_uj B_ji``, each played
  song ``j`` contributes ``x_uj B_ji`` and nothing else contributes.

Before a piece of evidence is written back it is checked against the listening the snapshot
holds (issue 13): a ``played`` song was played by the user, a ``similar_user`` played the song
and shares songs with the user (how many is kept and said), a ``genre_affinity`` genre holds a
real share of the user's plays (:meth:`GenreListening.claimable`; the share is kept and
said). A piece that fails is left out, however large its attribution. ``AFFINITY`` is the
user's share of plays per genre, never a model quantity.

Nothing here opens a driver: snapshots come in (exported by the caller), runs go to the
registry on disk, and write-back rows (plain dataclasses of ``graphdb``) go out.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.explain.metric import characterization_score

from gnn.core._ann import ANNIndex
from gnn.core._recommender import Recommender
from gnn.explain._attribution import (
    SONG_SIDE,
    USER_SIDE,
    Attribution,
    FidelityReport,
    GradientExplainer,
    PairExplanation,
    deletion_fidelity,
    edge_masks,
    supports_explanations,
)
from gnn.explain._reasons import NamedEvidence, choose_reason
from gnn.graph._data import TrainData, interaction_matrix
from gnn.graph._export import Progress
from gnn.graph._snapshot import GraphSnapshot
from gnn.users._diversity import capped_recommend
from gnn.users._models import RecModel
from gnn.users._recommenders import EnhancedGATRecommender, _GNNRecommender
from graphdb import Evidence, RecommendationRow
from spotify_engine.errors import ModelError

log = logging.getLogger(__name__)

#: A genre may be claimed about a user ("38% of your plays are X") when it is among the user's
#: ``CLAIM_TOP`` genres by plays and holds at least ``CLAIM_FLOOR`` of them, or holds at least
#: ``CLAIM_SHARE`` of them whatever its rank.
CLAIM_TOP = 3
CLAIM_FLOOR = 0.05
CLAIM_SHARE = 0.10
#: Genres written as ``AFFINITY`` per user (most played first).
AFFINITY_TOP = 5
#: Attributions kept per recommendation before the truth check (it may drop some).
POOL = 25
#: From this many played songs on, a graph model's similar songs come from an approximate
#: nearest-neighbour index (``gnn.core.ANNIndex``) instead of the exact product (issue 15).
ANN_MIN_SONGS = 50_000


@dataclass
class GenreListening:
    """Each user's plays per genre: a play counts for every genre its song is ``IN_GENRE``.

    Attributes:
        plays: float64 [U, G]: plays of the user's songs in each genre.
        total: float64 [U]: all of the user's plays.
    """

    plays: np.ndarray
    total: np.ndarray

    def share(self, user: int, genre: int) -> float:
        """The share of ``user``'s plays whose song is in ``genre`` (0 without plays)."""
        t = self.total[user]
        return float(self.plays[user, genre] / t) if t > 0 else 0.0

    def top(self, user: int, n: int = AFFINITY_TOP) -> list[tuple[int, float, int]]:
        """Up to ``n`` genres the user played, most played first (ties: lower index):
        ``(genre, share, plays)``."""
        row = self.plays[user]
        order = np.argsort(-row, kind="stable")[:n]
        return [(int(g), self.share(user, int(g)), int(row[g])) for g in order if row[g] > 0]

    def claimable(self, user: int, genre: int) -> bool:
        """Whether a sentence may say the user listens to ``genre`` (see :data:`CLAIM_TOP`)."""
        mine = self.plays[user, genre]
        if mine <= 0:
            return False
        share = self.share(user, genre)
        above = int((self.plays[user] > mine).sum())
        return share >= CLAIM_SHARE or (above < CLAIM_TOP and share >= CLAIM_FLOOR)


def genre_listening(snap: GraphSnapshot, mask: np.ndarray | None = None) -> GenreListening:
    """Plays per user and genre over the masked plays (default: all), from ``IN_GENRE`` of
    songs; the same numbers ``cypher/explain/genre_listening.cypher`` reads from the graph."""
    keep = np.ones(snap.num_plays, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    m = interaction_matrix(snap, keep)
    sg = sp.csr_matrix(
        (np.ones(snap.song_genre.shape[1]), (snap.song_genre[0], snap.song_genre[1])),
        shape=(snap.num_songs, snap.num_genres),
    )
    sg.data[:] = 1.0  # duplicates summed above count once
    plays = np.asarray((m @ sg).todense(), dtype=np.float64).reshape(snap.num_users, -1)
    total = np.asarray(m.sum(axis=1), dtype=np.float64).ravel()
    return GenreListening(plays=plays, total=total)


class _Facts:
    """What the snapshot says, for checking evidence before it is written."""

    def __init__(self, snap: GraphSnapshot) -> None:
        m = interaction_matrix(snap, np.ones(snap.num_plays, dtype=bool))
        m.data[:] = 1.0
        self.played = m.tocsr()
        self.played.sort_indices()  # listened() bisects a user's row
        self.played_t = m.T.tocsr()
        self.listening = genre_listening(snap)
        self.song_artist = _pairs(snap.song_artist)
        self.song_genre = _pairs(snap.song_genre)
        self.playlist_song = _pairs(snap.playlist_song)
        self._common: tuple[int, np.ndarray] | None = None

    def listened(self, user: int, song: int) -> bool:
        # a binary search of the sorted row: np.isin on one value cost ~50 us a call, 55 of the
        # 67 s the rows of 20,000 users took at 8M plays (a million checks)
        row = self.played.indices[self.played.indptr[user] : self.played.indptr[user + 1]]
        j = int(row.searchsorted(song))
        return j < len(row) and int(row[j]) == song

    def in_common(self, user: int, other: int) -> int:
        """Songs both users listened to."""
        if self._common is None or self._common[0] != user:
            vec = (self.played @ self.played[user].T).toarray().ravel()
            self._common = (user, vec)
        return int(self._common[1][other])

    def holds(self, user: int, song: int, a: Attribution) -> tuple[bool, float | None, int | None]:
        """Whether ``a`` is true of the graph, and the fact its sentence states."""
        if a.kind == "played":
            return self.listened(user, a.node), None, None
        if a.kind == "genre_affinity":
            ok = self.listening.claimable(user, a.node)
            return ok, (self.listening.share(user, a.node) if ok else None), None
        if a.kind == "similar_user":
            if a.node == user or not self.listened(a.node, song):
                return False, None, None
            n = self.in_common(user, a.node)
            return n > 0, None, n
        if a.kind == "artist":
            return (song, a.node) in self.song_artist, None, None
        if a.kind == "genre":
            return (song, a.node) in self.song_genre, None, None
        if a.kind == "playlist":
            return (a.node, song) in self.playlist_song, None, None
        return False, None, None


_pairs_cache: dict[int, tuple[weakref.ref[np.ndarray], frozenset[tuple[int, int]]]] = {}


def _pairs(edges: np.ndarray) -> frozenset[tuple[int, int]]:
    """The (source, target) pairs of a [2, E] edge array, kept per array: a fold-in's one-user
    snapshot shares its static edges with the run's snapshot, so each request reuses them."""
    hit = _pairs_cache.get(id(edges))
    if hit is not None and hit[0]() is edges:
        return hit[1]
    pairs = frozenset(zip(*edges.tolist(), strict=True))
    for key in [k for k, (ref, _) in _pairs_cache.items() if ref() is None]:
        del _pairs_cache[key]
    _pairs_cache[id(edges)] = (weakref.ref(edges), pairs)
    return pairs


_facts_cache: tuple[weakref.ref[GraphSnapshot], _Facts] | None = None


def _facts(snap: GraphSnapshot) -> _Facts:
    global _facts_cache
    if _facts_cache is not None and _facts_cache[0]() is snap:
        return _facts_cache[1]
    facts = _Facts(snap)
    _facts_cache = (weakref.ref(snap), facts)
    return facts


def display_names(snap: GraphSnapshot) -> dict[str, np.ndarray]:
    """Node type -> the name shown for each node (its id where the graph has no name)."""

    def pick(names: np.ndarray | None, ids: np.ndarray) -> np.ndarray:
        if names is None:
            return ids
        return np.array([n if n else i for n, i in zip(names, ids, strict=True)], dtype=object)

    return {
        "song": pick(snap.song_names, snap.song_ids),
        "artist": pick(snap.artist_names, snap.artist_ids),
        "genre": pick(snap.genre_names, snap.genre_ids),
        "user": snap.user_ids,
        # Playlist names are not exported; the sentence leaves them out (the edge keeps the id).
        "playlist": np.full(snap.num_playlists, "", dtype=object),
    }


def _id_of(snap: GraphSnapshot, node_type: str, idx: int) -> str:
    arr = {
        "song": snap.song_ids,
        "artist": snap.artist_ids,
        "genre": snap.genre_ids,
        "user": snap.user_ids,
        "playlist": snap.playlist_ids,
    }[node_type]
    return str(arr[idx])


@dataclass
class Explained:
    """Recommendations with their attributions, for write-back and quality checks.

    ``method`` is ``"gradient"`` (edge-mask gradients of a graph model) or ``"exact"`` (the
    parts of a linear model's score).
    """

    users: np.ndarray
    songs: np.ndarray
    scores: np.ndarray
    explanations: list[list[PairExplanation]]
    method: str = field(default="gradient")


def explainable(rec: Recommender) -> bool:
    """Whether :func:`recommend_and_explain` can explain ``rec`` (before or after fitting):
    EnhancedGAT (gradients) and the linear EASE^R and ItemKNN (exact)."""
    if isinstance(rec, _GNNRecommender):
        if rec.model is not None:
            return supports_explanations(rec.model)
        return isinstance(rec, EnhancedGATRecommender)
    return callable(getattr(rec, "contributions", None))


def _not_explainable(rec: Recommender) -> ModelError:
    return ModelError(
        f"{rec.name} cannot be explained (needs per-edge-type attention layers, or a linear "
        "score such as EASE's or ItemKNN's)",
        hint="write back enhancedgat, ease or itemknn, or train with --no-writeback",
    )


def _exact(
    rec: Any, observed: TrainData, users: np.ndarray, ids: np.ndarray, *, pool: int, played: int
) -> list[list[PairExplanation]]:
    out: list[list[PairExplanation]] = []
    empty = np.zeros(0, dtype=np.int64)
    for n, u in enumerate(users):
        row = ids[n]
        hist, parts = rec.contributions(int(u), row[row >= 0], observed)
        per: list[PairExplanation] = []
        c = 0
        for i in row:
            if i < 0:
                per.append(PairExplanation([], empty))
                continue
            col = parts[:, c]
            c += 1
            pos = np.flatnonzero(col > 0)
            best = pos[np.argsort(-col[pos], kind="stable")[:pool]]
            items = [
                Attribution("played", "Song", "song", int(hist[j]), float(col[j])) for j in best
            ]
            ranked = hist[np.argsort(-col, kind="stable")[:played]].astype(np.int64)
            per.append(PairExplanation(items, ranked))
        out.append(per)
    return out


def recommend_and_explain(
    rec: Recommender,
    observed: TrainData,
    users: np.ndarray,
    *,
    k: int = 10,
    top: int = POOL,
    progress: Progress | None = None,
    max_per_artist: int | None = None,
) -> Explained:
    """Top-k per user (at most ``max_per_artist`` songs per artist, see
    :func:`gnn.users._diversity.capped_recommend`) and every recommendation's ``top``
    strongest pieces of evidence.

    Raises:
        ModelError: ``rec`` is neither an attention graph model nor a linear one.
    """
    if not explainable(rec):
        raise _not_explainable(rec)
    ids, scores = capped_recommend(rec, np.asarray(users), k, observed, max_per_artist)
    if isinstance(rec, _GNNRecommender):
        assert rec.model is not None
        explainer = GradientExplainer(rec.model, observed.hetero)
        explanations = explainer.explain(
            users,
            ids,
            top=top,
            progress=(lambda d, t: progress("explain", d, t)) if progress else None,
        )
        return Explained(users=users, songs=ids, scores=scores, explanations=explanations)
    explanations = _exact(rec, observed, np.asarray(users), ids, pool=top, played=10)
    if progress:
        progress("explain", 1, 1)
    return Explained(users, ids, scores, explanations, method="exact")


@dataclass(frozen=True)
class _Held:
    attr: Attribution
    share_of_plays: float | None
    songs_in_common: int | None


def _held(facts: _Facts, user: int, song: int, pe: PairExplanation, top: int) -> list[_Held]:
    """The ``top`` strongest pieces of ``pe`` that are true of the graph, strongest first."""
    out: list[_Held] = []
    for a in pe.evidence:
        ok, share, common = facts.holds(user, song, a)
        if ok:
            out.append(_Held(a, share, common))
            if len(out) == top:
                break
    return out


def writeback_rows(
    snap: GraphSnapshot, ex: Explained, *, top: int = 5, affinity_top: int = AFFINITY_TOP
) -> tuple[list[RecommendationRow], list[tuple[str, str, float, int]]]:
    """Rows for ``graphdb.Writeback``: recommendations with their true evidence, and affinities.

    Evidence: the ``top`` strongest pieces that hold in the snapshot (see the module
    docstring), weights normalised to sum to 1; at most three of them are named in the
    sentence (``Evidence.named``), and a rank whose sentence would repeat the previous rank's
    names other evidence when it has some. ``AFFINITY``: each user's ``affinity_top`` most
    played genres as ``(user_id, genre_id, share_of_plays, plays)``.
    """
    facts = _facts(snap)
    names = display_names(snap)
    song_artist = np.full(snap.num_songs, -1, dtype=np.int64)
    song_artist[snap.song_artist[0]] = snap.song_artist[1]
    rows: list[RecommendationRow] = []
    for n, u in enumerate(ex.users):
        u = int(u)
        uid = str(snap.user_ids[u])
        previous: str | None = None
        for r in range(ex.songs.shape[1]):
            i = int(ex.songs[n, r])
            if i < 0:
                continue
            held = _held(facts, u, i, ex.explanations[n][r], top)
            total = sum(h.attr.weight for h in held) or 1.0
            named = []
            for h in held:
                a = h.attr
                artist = None
                if a.node_type == "song" and song_artist[a.node] >= 0:
                    artist = str(names["artist"][song_artist[a.node]])
                named.append(
                    NamedEvidence(
                        a.kind,
                        str(names[a.node_type][a.node]),
                        a.weight,
                        artist,
                        share_of_plays=h.share_of_plays,
                        songs_in_common=h.songs_in_common,
                    )
                )
            chosen, reason = choose_reason(named, avoid=previous)
            previous = reason
            evidence = [
                Evidence(
                    h.attr.label,
                    _id_of(snap, h.attr.node_type, h.attr.node),
                    h.attr.kind,
                    h.attr.weight / total,
                    named=j in chosen,
                    share_of_plays=h.share_of_plays,
                    songs_in_common=h.songs_in_common,
                )
                for j, h in enumerate(held)
            ]
            rows.append(
                RecommendationRow(
                    user_id=uid,
                    song_id=str(snap.song_ids[i]),
                    rank=r + 1,
                    score=float(ex.scores[n, r]),
                    evidence=evidence,
                    reason=reason,
                )
            )
    aff_rows = [
        (str(snap.user_ids[u]), str(snap.genre_ids[g]), share, plays)
        for u in np.unique(np.asarray(ex.users, dtype=np.int64)).tolist()
        for g, share, plays in facts.listening.top(u, affinity_top)
    ]
    return rows, aff_rows


def similar_songs(
    rec: Recommender, observed: TrainData, *, k: int = 10, block: int = 2048
) -> list[tuple[str, str, float]]:
    """Top-k neighbours of every played song: cosine in the learned song embeddings (graph
    models), or the item-item weights the score is made of (``S`` of ItemKNN, ``B`` of EASE)."""
    snap = observed.snapshot
    played = np.flatnonzero(np.diff(observed.matrix.tocsc().indptr) > 0)
    if not isinstance(rec, _GNNRecommender):
        items = getattr(rec, "similar_items", None)
        if items is None:
            raise _not_explainable(rec)
        a, b, w = items(k)
        keep = np.isin(a, played) & np.isin(b, played)
        return [
            (str(snap.song_ids[x]), str(snap.song_ids[y]), float(v))
            for x, y, v in zip(a[keep], b[keep], w[keep], strict=True)
        ]
    emb = rec.embeddings(observed)["song"].detach()
    if len(played) >= ANN_MIN_SONGS and len(played) > k:
        # issue 15: an HNSW index instead of a played x played product (ann_recall measured
        # against the exact search in benchmarks/scale.py)
        ids, sims = ANNIndex(emb[torch.as_tensor(played)].numpy(), metric="cosine").neighbours(k)
        return [
            (str(snap.song_ids[played[a]]), str(snap.song_ids[played[b]]), float(v))
            for a, row, vals in zip(range(len(played)), ids.tolist(), sims.tolist(), strict=True)
            for b, v in zip(row, vals, strict=True)
            if b >= 0
        ]
    emb = torch.nn.functional.normalize(emb, dim=1)
    out: list[tuple[str, str, float]] = []
    cand = torch.as_tensor(played)
    for start in range(0, len(played), block):
        idx = cand[start : start + block]
        sims = emb[idx] @ emb[cand].T
        sims[torch.arange(len(idx)), torch.arange(start, start + len(idx))] = -2.0
        val, pos = sims.topk(min(k, len(played) - 1), dim=1)
        for a, vs, ps in zip(idx.tolist(), val.tolist(), pos.tolist(), strict=True):
            for v, p in zip(vs, ps, strict=True):
                out.append((str(snap.song_ids[a]), str(snap.song_ids[played[p]]), float(v)))
    return out


def _linear_fidelity(
    rec: Any, observed: TrainData, pairs: list[tuple[int, int, list[int]]], remove: int, seed: int
) -> FidelityReport:
    """Deletion fidelity of a linear model: removing history songs lowers the score by exactly
    their parts, so no re-scoring is needed."""
    rng = np.random.default_rng(seed)
    drops_e, drops_r = [], []
    for u, i, ranked in pairs:
        hist, parts = rec.contributions(u, np.array([i]), observed)
        if len(hist) <= remove:
            continue
        part = dict(zip(hist.tolist(), parts[:, 0].tolist(), strict=True))
        drops_e.append(sum(part[s] for s in ranked[:remove]))
        drops_r.append(sum(part[int(s)] for s in rng.choice(hist, size=remove, replace=False)))
    e, r = np.asarray(drops_e), np.asarray(drops_r)
    n = len(e)
    nan = float("nan")
    return FidelityReport(
        pairs=n,
        removed_per_pair=remove,
        mean_drop_explained=float(e.mean()) if n else nan,
        mean_drop_random=float(r.mean()) if n else nan,
        mean_drop_attention=nan,
        explained_wins=float((e > r).mean()) if n else nan,
        attention_wins=nan,
    )


def explanation_quality(
    rec: Recommender,
    observed: TrainData,
    ex: Explained,
    *,
    truth_folder: Path | None = None,
    sample: int = 60,
    remove: int = 3,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Deletion fidelity on a sample of recommendations, and the planted-genre hit rate."""
    rng = np.random.default_rng(seed)
    snap = observed.snapshot
    candidates = [
        (n, r)
        for n in range(len(ex.users))
        for r in range(ex.songs.shape[1])
        if ex.songs[n, r] >= 0
    ]
    picks = rng.choice(len(candidates), size=min(sample, len(candidates)), replace=False)
    pairs = []
    for p in picks:
        n, r = candidates[int(p)]
        pairs.append((int(ex.users[n]), int(ex.songs[n, r]), ex.explanations[n][r].played.tolist()))
    if isinstance(rec, _GNNRecommender):
        assert rec.model is not None
        fid = deletion_fidelity(
            rec.model, observed, pairs, remove=remove, seed=seed, progress=progress
        )
    else:
        fid = _linear_fidelity(rec, observed, pairs, remove, seed)
    out: dict[str, Any] = {"fidelity": fid.to_dict()}

    if truth_folder is not None and (Path(truth_folder) / "truth.json").exists():
        from ingest import load_truth

        truth = load_truth(Path(truth_folder) / "truth.json")
        song_g = np.zeros((snap.num_songs, snap.num_genres), dtype=np.float32)
        song_g[snap.song_genre[0], snap.song_genre[1]] = snap.song_genre_weight
        art_g = np.zeros((snap.num_artists, snap.num_genres), dtype=np.float32)
        art_g[snap.artist_genre[0], snap.artist_genre[1]] = snap.artist_genre_weight
        hits = total = 0
        primary_hits = 0
        for n, u in enumerate(ex.users):
            ut = truth.users.get(str(snap.user_ids[u]))
            if ut is None:
                continue
            fav = set(ut.genres)
            for r in range(ex.songs.shape[1]):
                i = int(ex.songs[n, r])
                if i < 0:
                    continue
                g = np.zeros(snap.num_genres)
                for a in ex.explanations[n][r].evidence[:5]:
                    if a.node_type == "genre":
                        g[a.node] += a.weight
                    elif a.node_type == "song":
                        g += a.weight * song_g[a.node]
                    elif a.node_type == "artist":
                        g += a.weight * art_g[a.node]
                if g.max(initial=0.0) <= 0:
                    continue
                total += 1
                hits += str(snap.genre_ids[int(g.argmax())]) in fav
                primary_hits += str(snap.genre_ids[int(song_g[i].argmax())]) in fav
        out["planted_genre"] = {
            "recommendations": total,
            "top_explaining_genre_in_planted": hits / total if total else float("nan"),
            "recommended_songs_primary_genre_in_planted": primary_hits / total
            if total
            else float("nan"),
            "chance_uniform_genre": float(np.mean([len(t.genres) for t in truth.users.values()]))
            / snap.num_genres,
        }
    return out


# -- fidelity and sufficiency of the written-back evidence ----------------------------------------

EdgeType = tuple[str, str, str]


def _cases(
    ex: Explained, facts: _Facts, top: int
) -> tuple[list[tuple[int, int]], list[list[Attribution]]]:
    """Every recommendation (row, rank) and the evidence written back for it."""
    pairs: list[tuple[int, int]] = []
    ours: list[list[Attribution]] = []
    for n, u in enumerate(ex.users):
        for r in range(ex.songs.shape[1]):
            i = int(ex.songs[n, r])
            if i < 0:
                continue
            held = _held(facts, int(u), i, ex.explanations[n][r], top)
            pairs.append((n, r))
            ours.append([h.attr for h in held])
    return pairs, ours


class _Scorer:
    """Scores of one (user, song) under edge masks: one forward per call, exact."""

    def __init__(self, model: RecModel, data: TrainData) -> None:
        self.model = model
        self.data = data
        self.types = {
            et: v for et, v in {**USER_SIDE, **SONG_SIDE}.items() if et in data.hetero.edge_types
        }
        self.kind_type = {v[0]: et for et, v in self.types.items()}
        self.edges: dict[EdgeType, tuple[np.ndarray, np.ndarray]] = {}
        for et in self.types:
            ei = data.hetero[et].edge_index.numpy()
            self.edges[et] = (ei[0], ei[1])
        model.eval()
        with torch.no_grad():
            model.embed(data.hetero)
        self.attention: dict[EdgeType, np.ndarray] = {}
        last = getattr(model, "last_attention", None)
        if last:
            for et in self.types:
                if et in last[-1]:
                    self.attention[et] = last[-1][et][1].mean(dim=1).numpy()

    def incoming(self, user: int, song: int) -> list[tuple[EdgeType, int]]:
        out = []
        for et in self.types:
            dst = user if et in USER_SIDE else song
            out += [(et, int(e)) for e in np.flatnonzero(self.edges[et][1] == dst)]
        return out

    def key(self, user: int, song: int, a: Attribution) -> tuple[EdgeType, int]:
        et = self.kind_type[a.kind]
        dst = user if et in USER_SIDE else song
        src, d = self.edges[et]
        return et, int(np.flatnonzero((src == a.node) & (d == dst))[0])

    @torch.no_grad()
    def scores(self, user: int, zero: list[tuple[EdgeType, int]]) -> np.ndarray:
        masks = {et: torch.ones(len(self.edges[et][0])) for et in self.types}
        for et, e in zero:
            masks[et][e] = 0.0
        with edge_masks(self.model, masks):
            emb = self.model.embed(self.data.hetero)
            s = self.model.score_all(self.data.hetero, emb, torch.as_tensor([user]))
        return s[0].numpy().astype(np.float64)


Scores = np.ndarray


def _graph_case(
    scorer: _Scorer, u: int, i: int, attrs: list[Attribution], rng: np.random.Generator
) -> tuple[Scores, Scores, dict[str, tuple[Scores, Scores]]]:
    """Full, empty, and (removed, kept-only) scores per evidence choice, for a graph model."""
    cand = scorer.incoming(u, i)
    mine = [scorer.key(u, i, a) for a in attrs]
    pick = [cand[int(j)] for j in rng.choice(len(cand), size=len(mine), replace=False)]

    def attention(c: tuple[EdgeType, int]) -> float:
        return -float(scorer.attention[c[0]][c[1]]) if c[0] in scorer.attention else 0.0

    att = sorted(cand, key=attention)[: len(mine)]
    out = {}
    for m, sel in (("ours", mine), ("random", pick), ("attention", att)):
        chosen = set(sel)
        out[m] = (scorer.scores(u, sel), scorer.scores(u, [c for c in cand if c not in chosen]))
    return scorer.scores(u, []), scorer.scores(u, cand), out


def _linear_case(
    rec: Any,
    observed: TrainData,
    u: int,
    i: int,
    attrs: list[Attribution],
    rng: np.random.Generator,
) -> tuple[Scores, Scores, dict[str, tuple[Scores, Scores]]]:
    """The same for a linear model, from the exact parts of every song's score."""
    hist, parts = rec.contributions(u, np.arange(observed.num_songs), observed)
    cold = rec.score(np.array([u]), observed)[0] <= -1e29
    row = {int(s): j for j, s in enumerate(hist)}
    mine = [row[a.node] for a in attrs]
    pick = rng.choice(len(hist), size=len(mine), replace=False).tolist()
    out = {}
    for m, sel in (("ours", mine), ("random", pick)):
        keep = np.zeros(len(hist), dtype=bool)
        keep[sel] = True
        rm, kp = parts[~keep].sum(axis=0), parts[keep].sum(axis=0)
        rm[cold] = kp[cold] = -np.inf
        out[m] = (rm, kp)
    base = parts.sum(axis=0)
    base[cold] = -np.inf
    return base, np.zeros_like(base), out


def _summary(
    full: np.ndarray,
    empty: np.ndarray,
    removed: dict[str, np.ndarray],
    kept: dict[str, np.ndarray],
    left_top_removed: dict[str, np.ndarray],
    left_top_kept: dict[str, np.ndarray],
) -> dict[str, Any]:
    span = full - empty
    ok = span > 1e-9
    out: dict[str, Any] = {}
    for m in removed:
        drop = full - removed[m]
        frac = (kept[m] - empty)[ok] / span[ok]
        fid_pos = float(left_top_removed[m].mean())
        fid_neg = float(left_top_kept[m].mean())
        char = (
            float(characterization_score(torch.tensor(fid_pos), torch.tensor(fid_neg)))
            if fid_pos > 0 and fid_neg < 1
            else 0.0
        )
        out[m] = {
            "mean_score_drop": float(drop.mean()),
            "mean_drop_share": float(np.mean(drop[ok] / span[ok])) if ok.any() else float("nan"),
            "beats_random": float((drop > full - removed["random"]).mean())
            if m != "random"
            else float("nan"),
            "beats_attention": float((drop > full - removed["attention"]).mean())
            if m == "ours" and "attention" in removed
            else float("nan"),
            "sufficiency_median": float(np.median(frac)) if ok.any() else float("nan"),
            "sufficiency_mean": float(np.mean(np.clip(frac, -1, 2))) if ok.any() else float("nan"),
            "fidelity_plus": fid_pos,
            "fidelity_minus": fid_neg,
            "characterization": char,
        }
    return out


def explanation_fidelity(
    rec: Recommender,
    observed: TrainData,
    ex: Explained,
    *,
    sample: int = 100,
    top: int = 5,
    k: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Deletion and sufficiency of the evidence that is written back, against random evidence
    and (graph models) the edges with the most raw last-layer attention, on a sample of
    recommendations.

    A piece of evidence is an edge (graph models: the message of that edge is zeroed in every
    layer, which is what its attribution is the derivative of) or a played song (linear models:
    its part of the score). For each recommendation, with ``n`` = its number of pieces:

    * deletion: the score drop when the ``n`` pieces are removed (``mean_score_drop``; as a
      share of ``full - empty``, where *empty* removes every candidate piece:
      ``mean_drop_share``), and how often it beats removing ``n`` random candidates;
    * sufficiency: ``(kept - empty) / (full - empty)`` when every other candidate is removed
      (above 1 when the removed parts were negative, as EASE's can be);
    * PyG's model-mode fidelity with "prediction" = the song stays in the user's top ``k``:
      ``fidelity_plus`` (removing the evidence drops it), ``fidelity_minus`` (keeping only the
      evidence drops it), and their ``characterization`` score
      (``torch_geometric.explain.metric.characterization_score``).

    Candidates: every edge of an explained type into the user or into the song (graph models),
    every song of the user's history (linear models).
    """
    snap = observed.snapshot
    facts = _facts(snap)
    rng = np.random.default_rng(seed)
    pairs, ours = _cases(ex, facts, top)
    picks = rng.choice(len(pairs), size=min(sample, len(pairs)), replace=False)
    kk = k if k is not None else ex.songs.shape[1]
    methods = ("ours", "random", "attention") if ex.method == "gradient" else ("ours", "random")
    full, empty = [], []
    removed: dict[str, list[float]] = {m: [] for m in methods}
    kept: dict[str, list[float]] = {m: [] for m in methods}
    out_rm: dict[str, list[bool]] = {m: [] for m in methods}
    out_kp: dict[str, list[bool]] = {m: [] for m in methods}
    m_obs = observed.matrix

    def left_top(scores: np.ndarray, user: int, song: int) -> bool:
        s = scores.copy()
        s[m_obs.indices[m_obs.indptr[user] : m_obs.indptr[user + 1]]] = -np.inf
        return bool((s > s[song]).sum() >= kk)

    scorer = None
    if isinstance(rec, _GNNRecommender):
        assert rec.model is not None
        scorer = _Scorer(rec.model, observed)
    for done, p in enumerate(picks):
        n, r = pairs[int(p)]
        u, i = int(ex.users[n]), int(ex.songs[n, r])
        attrs = ours[int(p)]
        if not attrs:
            continue
        if scorer is not None:
            base, none, conds = _graph_case(scorer, u, i, attrs, rng)
        else:
            base, none, conds = _linear_case(rec, observed, u, i, attrs, rng)
        full.append(base[i])
        empty.append(none[i])
        for m in methods:
            rm, kp = conds[m]
            removed[m].append(rm[i])
            kept[m].append(kp[i])
            out_rm[m].append(left_top(rm, u, i))
            out_kp[m].append(left_top(kp, u, i))
        if progress:
            progress(done + 1, len(picks))
    f, e = np.asarray(full), np.asarray(empty)
    summary = _summary(
        f,
        e,
        {m: np.asarray(v) for m, v in removed.items()},
        {m: np.asarray(v) for m, v in kept.items()},
        {m: np.asarray(v) for m, v in out_rm.items()},
        {m: np.asarray(v) for m, v in out_kp.items()},
    )
    return {"method": ex.method, "recommendations": len(f), "top": top, "k": kk, **summary}


def user_attention(
    rec: _GNNRecommender, observed: TrainData, user: int, *, top: int = 15
) -> tuple[np.ndarray, list[str], list[str]]:
    """The attention a user's node pays to the songs it listened to, per layer and head.

    Runs one forward pass over ``observed`` and reads the model's ``last_attention`` for
    ``(song, listened_by, user)`` edges into ``user``. Rows are the ``top`` songs by mean
    attention (labelled with their names), columns ``L1 h1`` ... ``Ln hH``.

    Raises:
        ValueError: the model keeps no attention for that edge type, or the user has no plays.
    """
    model = rec.model
    if model is None:
        raise ValueError(f"{rec.name} is not fitted")
    et = ("song", "listened_by", "user")
    model.eval()
    with torch.no_grad():
        model.embed(observed.hetero)
    layers = [att[et] for att in getattr(model, "last_attention", []) if et in att]
    if not layers:
        raise ValueError(f"{rec.name} keeps no attention weights for {et}")
    per_layer = []
    songs: np.ndarray | None = None
    for ei, alpha in layers:
        sel = (ei[1] == user).nonzero().view(-1)
        order = torch.argsort(ei[0][sel], stable=True)
        sel = sel[order]
        src = ei[0][sel].numpy()
        if songs is None:
            songs = src
        elif not np.array_equal(songs, src):
            raise ValueError("attention edges differ between layers")
        per_layer.append(alpha[sel].numpy())
    if songs is None or len(songs) == 0:
        raise ValueError(f"user index {user} has no listened songs in this view")
    matrix = np.concatenate(per_layer, axis=1)
    best = np.argsort(-matrix.mean(axis=1), kind="stable")[:top]
    names = display_names(observed.snapshot)["song"]
    rows = [str(names[songs[i]])[:40] for i in best]
    heads = per_layer[0].shape[1]
    cols = [f"L{layer + 1} h{h + 1}" for layer in range(len(per_layer)) for h in range(heads)]
    return matrix[best], rows, cols
