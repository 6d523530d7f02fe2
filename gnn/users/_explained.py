"""Recommendations with explanations, turned into the rows graphdb writes back.

Nothing here opens a driver: snapshots come in (exported by the caller), runs go to the
registry on disk, and write-back rows (plain dataclasses of ``graphdb``) go out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnn.explain._attribution import (
    GradientExplainer,
    PairExplanation,
    deletion_fidelity,
    supports_explanations,
)
from gnn.explain._reasons import NamedEvidence, reason_text
from gnn.graph._data import TrainData
from gnn.graph._export import Progress
from gnn.graph._snapshot import GraphSnapshot
from gnn.users._recommenders import _GNNRecommender
from graphdb import Evidence, RecommendationRow

log = logging.getLogger(__name__)


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
    """Recommendations with their attributions, for write-back and quality checks."""

    users: np.ndarray
    songs: np.ndarray
    scores: np.ndarray
    explanations: list[list[PairExplanation]]


def recommend_and_explain(
    rec: _GNNRecommender,
    observed: TrainData,
    users: np.ndarray,
    *,
    k: int = 10,
    top: int = 5,
    progress: Progress | None = None,
) -> Explained:
    """Top-k per user and every recommendation's top evidence (kept whole for fidelity)."""
    if rec.model is None or not supports_explanations(rec.model):
        raise ValueError(f"{rec.name} cannot be explained (needs per-edge-type attention layers)")
    ids, scores = rec.recommend(users, k, observed)
    explainer = GradientExplainer(rec.model, observed.hetero)
    explanations = explainer.explain(
        users, ids, top=top, progress=(lambda d, t: progress("explain", d, t)) if progress else None
    )
    return Explained(users=users, songs=ids, scores=scores, explanations=explanations)


def writeback_rows(
    snap: GraphSnapshot, ex: Explained, *, top: int = 5, affinity_top: int = 5
) -> tuple[list[RecommendationRow], list[tuple[str, str, float]]]:
    """Rows for ``graphdb.Writeback``: recommendations with normalised evidence, and affinities.

    A user's ``AFFINITY`` to a genre is the summed ``genre_affinity`` attribution over all of
    their recommendations (the learned influence of their genre listening), top
    ``affinity_top`` genres, normalised to sum to 1.
    """
    names = display_names(snap)
    song_artist = np.full(snap.num_songs, -1, dtype=np.int64)
    song_artist[snap.song_artist[0]] = snap.song_artist[1]
    rows: list[RecommendationRow] = []
    affinity: dict[tuple[str, str], float] = {}
    for n, u in enumerate(ex.users):
        uid = str(snap.user_ids[u])
        for r in range(ex.songs.shape[1]):
            i = int(ex.songs[n, r])
            if i < 0:
                continue
            attrs = ex.explanations[n][r].evidence
            for a in attrs:
                if a.kind == "genre_affinity":
                    key = (uid, _id_of(snap, "genre", a.node))
                    affinity[key] = affinity.get(key, 0.0) + a.weight
            best = attrs[:top]
            total = sum(a.weight for a in best) or 1.0
            evidence = [
                Evidence(a.label, _id_of(snap, a.node_type, a.node), a.kind, a.weight / total)
                for a in best
            ]
            named = []
            for a in best:
                artist = None
                if a.node_type == "song" and song_artist[a.node] >= 0:
                    artist = str(names["artist"][song_artist[a.node]])
                named.append(
                    NamedEvidence(a.kind, str(names[a.node_type][a.node]), a.weight, artist)
                )
            rows.append(
                RecommendationRow(
                    user_id=uid,
                    song_id=str(snap.song_ids[i]),
                    rank=r + 1,
                    score=float(ex.scores[n, r]),
                    evidence=evidence,
                    reason=reason_text(named),
                )
            )
    by_user: dict[str, list[tuple[str, float]]] = {}
    for (uid, gid), w in affinity.items():
        by_user.setdefault(uid, []).append((gid, w))
    aff_rows: list[tuple[str, str, float]] = []
    for uid, lst in by_user.items():
        lst.sort(key=lambda t: -t[1])
        best = lst[:affinity_top]
        total = sum(w for _, w in best)
        aff_rows += [(uid, g, w / total) for g, w in best if total > 0]
    return rows, aff_rows


def similar_songs(
    rec: _GNNRecommender, observed: TrainData, *, k: int = 10, block: int = 2048
) -> list[tuple[str, str, float]]:
    """Top-k cosine neighbours of every played song in the learned song embeddings."""
    emb = rec.embeddings(observed)["song"].detach()
    emb = torch.nn.functional.normalize(emb, dim=1)
    played = np.flatnonzero(np.diff(observed.matrix.tocsc().indptr) > 0)
    snap = observed.snapshot
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


def explanation_quality(
    rec: _GNNRecommender,
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
    assert rec.model is not None
    fid = deletion_fidelity(rec.model, observed, pairs, remove=remove, seed=seed, progress=progress)
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
                for a in ex.explanations[n][r].evidence:
                    if a.node_type == "genre":
                        g[a.node] += a.weight
                    elif a.node_type == "song":
                        g += a.weight * song_g[a.node]
                    elif a.node_type == "artist":
                        g += a.weight * art_g[a.node]
                if g.max() <= 0:
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
