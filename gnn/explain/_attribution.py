"""Faithful explanations of a graph recommender's scores, from the model itself.

Method: edge-mask gradients (gradient x input on a mask of ones). Every message of the masked
edge types is multiplied by a mask entry (PyG's ``explain_message`` hook) in every layer; the
derivative of the score ``s(u, i) = <h_u, h_i> + b_i`` with respect to an edge's mask entry is
the first-order change of the score when that edge is removed from the whole computation.
Attention enters through the messages themselves (each message is already scaled by its
attention coefficient), which is why this is attention *combined with* gradients rather than
raw attention, which is known to be an unreliable explanation on its own.

Evidence kinds (edge type -> kind, evidence node):
    user side, edges into the user:  (song, listened_by, user) -> played, Song
                                     (genre, liked_by, user)   -> genre_affinity, Genre
    song side, edges into the song:  (user, listened, song)   -> similar_user, User
                                     (artist, performs, song) -> artist, Artist
                                     (genre, has_song, song)  -> genre, Genre
                                     (playlist, contains, song) -> playlist, Playlist

Isolation (why one backward pass can explain many users at once): with at most two
message-passing layers, an edge into user ``u`` changes only ``h_u`` among user embeddings,
and an edge into song ``i`` changes only ``h_i`` among song embeddings. So user-side
attributions come from ``sum_u <h_u, stop_grad(h_i(u))>`` (one backward per rank), and
song-side attributions from the Jacobian of the recommended songs' embeddings (one backward per
embedding dimension), contracted with each user's embedding. With more layers the isolation is
approximate; :func:`deletion_fidelity` measures how faithful the result is either way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.nn.conv import MessagePassing

from gnn.graph._data import TrainData, build_train_data
from gnn.graph._snapshot import GraphSnapshot

log = logging.getLogger(__name__)
EdgeType = tuple[str, str, str]


USER_SIDE: dict[EdgeType, tuple[str, str, str]] = {
    ("song", "listened_by", "user"): ("played", "Song", "song"),
    ("genre", "liked_by", "user"): ("genre_affinity", "Genre", "genre"),
}


SONG_SIDE: dict[EdgeType, tuple[str, str, str]] = {
    ("user", "listened", "song"): ("similar_user", "User", "user"),
    ("artist", "performs", "song"): ("artist", "Artist", "artist"),
    ("genre", "has_song", "song"): ("genre", "Genre", "genre"),
    ("playlist", "contains", "song"): ("playlist", "Playlist", "playlist"),
}


@dataclass(frozen=True)
class Attribution:
    """One piece of evidence for one (user, song): ``node`` is an index of ``node_type``."""

    kind: str
    label: str
    node_type: str
    node: int
    weight: float


@dataclass(frozen=True)
class PairExplanation:
    """The evidence for one (user, song), strongest first, and the user's history songs
    ranked by their own attribution (what deletion fidelity removes first)."""

    evidence: list[Attribution]
    played: np.ndarray


def _convs_for(model: torch.nn.Module, edge_type: EdgeType) -> list[MessagePassing]:
    """The message-passing modules of ``edge_type`` in every layer of the model."""
    out = []
    convs = getattr(model, "convs", None)
    if convs is None:
        return out
    for layer in convs:
        sub = getattr(layer, "convs", None)
        if sub is None:
            continue
        key = edge_type if edge_type in sub else "__".join(edge_type)
        with contextlib.suppress(KeyError, TypeError):
            out.append(sub[key])
    return out


@contextlib.contextmanager
def edge_masks(model: torch.nn.Module, masks: dict[EdgeType, Tensor]) -> Iterator[None]:
    """Multiply the messages of each masked edge type, in every layer, by its mask."""
    touched: list[MessagePassing] = []
    had_attr = hasattr(model, "explain_masks")
    try:
        if had_attr:
            model.explain_masks = dict(masks)
        for et, mask in masks.items():
            for conv in _convs_for(model, et):
                conv.explain = True
                conv._edge_mask = mask
                conv._loop_mask = torch.ones(mask.numel(), dtype=torch.bool)
                conv._apply_sigmoid = False
                touched.append(conv)
        yield
    finally:
        if had_attr:
            model.explain_masks = None
        for conv in touched:
            conv.explain = False
            conv._edge_mask = None
            conv._loop_mask = None
            conv._apply_sigmoid = True


def supports_explanations(model: torch.nn.Module) -> bool:
    """True for models whose layers are per-edge-type message passing (EnhancedGAT)."""
    return bool(_convs_for(model, ("song", "listened_by", "user")))


class GradientExplainer:
    """Edge-mask gradient attributions for a trained :class:`gnn.users._models.RecModel`.

    Args:
        model: the trained torch model (``recommender.model``).
        data: the observed graph the recommendations were scored on (``TrainData.hetero``).
        chunk: users per backward pass for the user side.
    """

    def __init__(self, model: torch.nn.Module, data: HeteroData, chunk: int = 4096):
        if not supports_explanations(model):
            raise ValueError(f"{type(model).__name__} has no per-edge-type layers to explain")
        self.model = model
        self.data = data
        self.chunk = chunk
        self.types = {
            et: v for et, v in {**USER_SIDE, **SONG_SIDE}.items() if et in data.edge_types
        }

    def _forward(self) -> tuple[dict[str, Tensor], dict[EdgeType, Tensor]]:
        masks = {
            et: torch.ones(self.data[et].edge_index.size(1), requires_grad=True)
            for et in self.types
        }
        self.model.eval()
        with edge_masks(self.model, masks):
            emb = self.model.embed(self.data)
        return emb, masks

    def explain(
        self,
        users: np.ndarray,
        songs: np.ndarray,
        *,
        top: int = 5,
        played: int = 10,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[list[PairExplanation]]:
        """Top evidence for each ``(users[n], songs[n, r])``, strongest first.

        Shapes:
            users: int [n]; songs: int [n, k] (song indices; -1 = none)
            -> list (n) of list (k) of :class:`PairExplanation` (``top`` pieces of evidence,
            ``played`` ranked history songs)
        """
        users = np.asarray(users, dtype=np.int64)
        songs = np.asarray(songs, dtype=np.int64)
        n, k = songs.shape
        emb, masks = self._forward()
        h_user, h_song = emb["user"], emb["song"]
        steps = k + h_song.size(1)
        done = 0

        # User side: one backward per rank; edges into user u only move h_u.
        user_types = [et for et in self.types if et in USER_SIDE]
        user_attr: list[dict[EdgeType, Tensor]] = []
        u_t = torch.as_tensor(users)
        for r in range(k):
            s_r = torch.as_tensor(np.where(songs[:, r] >= 0, songs[:, r], 0))
            target = (h_user[u_t] * h_song[s_r].detach()).sum()
            grads = torch.autograd.grad(
                target, [masks[et] for et in user_types], retain_graph=True, allow_unused=True
            )
            user_attr.append(
                {
                    et: (g if g is not None else torch.zeros_like(masks[et])).detach()
                    for et, g in zip(user_types, grads, strict=True)
                }
            )
            done += 1
            if progress:
                progress(done, steps)

        # Song side: Jacobian of the recommended songs' embeddings w.r.t. their incoming edges.
        song_types = [et for et in self.types if et in SONG_SIDE]
        uniq = np.unique(songs[songs >= 0])
        uniq_t = torch.as_tensor(uniq)
        jac: dict[EdgeType, list[Tensor]] = {et: [] for et in song_types}
        dims = h_song.size(1)
        for d in range(dims):
            target = h_song[uniq_t, d].sum()
            grads = torch.autograd.grad(
                target,
                [masks[et] for et in song_types],
                retain_graph=d < dims - 1,
                allow_unused=True,
            )
            for et, g in zip(song_types, grads, strict=True):
                jac[et].append(g if g is not None else torch.zeros_like(masks[et]))
            done += 1
            if progress:
                progress(done, steps)
        jac_m = {et: torch.stack(v, dim=1).detach() for et, v in jac.items()}  # [E, D]
        h_user_d = h_user.detach()

        # Incoming edges per destination node, for each masked type.
        incoming: dict[EdgeType, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for et in self.types:
            ei = self.data[et].edge_index.numpy()
            order = np.argsort(ei[1], kind="stable")
            dst_sorted = ei[1][order]
            incoming[et] = (order, dst_sorted, ei[0])

        def edges_into(et: EdgeType, node: int) -> tuple[np.ndarray, np.ndarray]:
            order, dst_sorted, src = incoming[et]
            a = np.searchsorted(dst_sorted, node, "left")
            b = np.searchsorted(dst_sorted, node, "right")
            eids = order[a:b]
            return eids, src[eids]

        kinds = list(self.types)
        played_ki = (
            kinds.index(("song", "listened_by", "user"))
            if (("song", "listened_by", "user") in kinds)
            else -1
        )
        out: list[list[PairExplanation]] = []
        empty = np.zeros(0, dtype=np.int64)
        for row in range(n):
            u = int(users[row])
            user_parts = []
            for et in user_types:
                eids, src = edges_into(et, u)
                user_parts.append((kinds.index(et), eids, src))
            per_rank: list[PairExplanation] = []
            for r in range(k):
                i = int(songs[row, r])
                if i < 0:
                    per_rank.append(PairExplanation([], empty))
                    continue
                vals, kind_ix, nodes = [], [], []
                for ki, eids, src in user_parts:
                    vals.append(user_attr[r][kinds[ki]][eids].numpy())
                    kind_ix.append(np.full(len(eids), ki))
                    nodes.append(src)
                for et in song_types:
                    eids, src = edges_into(et, i)
                    if len(eids) == 0:
                        continue
                    vals.append((jac_m[et][torch.as_tensor(eids)] @ h_user_d[u]).numpy())
                    kind_ix.append(np.full(len(eids), kinds.index(et)))
                    nodes.append(src)
                v = np.concatenate(vals) if vals else np.zeros(0)
                ki_all = np.concatenate(kind_ix) if kind_ix else np.zeros(0, dtype=np.int64)
                nd_all = np.concatenate(nodes) if nodes else np.zeros(0, dtype=np.int64)
                pos = np.flatnonzero(v > 0)
                best = pos[np.argsort(-v[pos], kind="stable")[:top]]
                items = []
                for j in best:
                    kind, label, nt = self.types[kinds[int(ki_all[j])]]
                    items.append(Attribution(kind, label, nt, int(nd_all[j]), float(v[j])))
                hist = np.flatnonzero(ki_all == played_ki)
                hist = hist[np.argsort(-v[hist], kind="stable")[:played]]
                per_rank.append(PairExplanation(items, nd_all[hist].astype(np.int64)))
            out.append(per_rank)
        return out


def _without_history(
    snap: GraphSnapshot, mask: np.ndarray, user: int, songs: np.ndarray
) -> TrainData:
    keep = mask.copy()
    keep &= ~((snap.play_user == user) & np.isin(snap.play_song, songs))
    return build_train_data(snap, keep)


@dataclass
class FidelityReport:
    """Deletion fidelity: mean score drop when removing explained vs random history songs."""

    pairs: int
    removed_per_pair: int
    mean_drop_explained: float
    mean_drop_random: float
    mean_drop_attention: float
    explained_wins: float
    attention_wins: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def deletion_fidelity(
    model: torch.nn.Module,
    observed: TrainData,
    pairs: list[tuple[int, int, list[int]]],
    *,
    remove: int = 3,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> FidelityReport:
    """Remove each pair's top explained history songs, or as many random ones, and re-score.

    ``pairs`` holds ``(user, song, history_songs_ranked_by_explanation)``. Each removal
    rebuilds the observed graph without those plays (edges, features and all) and re-runs the
    model, one pair at a time, so the measurement is exact. Raw last-layer attention is
    measured the same way, as the comparison the method has to beat.
    """
    rng = np.random.default_rng(seed)
    snap, mask = observed.snapshot, observed.play_mask
    drops_e, drops_r, drops_a = [], [], []
    model.eval()
    with torch.no_grad():
        emb = model.embed(observed.hetero)
    att = (
        model.last_attention[-1].get(("song", "listened_by", "user"))
        if hasattr(model, "last_attention") and model.last_attention
        else None
    )
    if att is not None:
        att_ei = att[0].numpy()
        att_a = att[1].mean(dim=1).numpy()

    def score(data: HeteroData, u: int, i: int, e: dict[str, Tensor] | None = None) -> float:
        e = e if e is not None else model.embed(data)
        s = float((e["user"][u] * e["song"][i]).sum())
        b = model.bias(data, torch.as_tensor([i]))
        return s + (float(b[0].detach()) if b is not None else 0.0)

    for n, (u, i, explained) in enumerate(pairs):
        m = observed.matrix
        history = np.unique(m.indices[m.indptr[u] : m.indptr[u + 1]])
        in_history = set(history.tolist())
        chosen = [s for s in explained if s in in_history][:remove]
        if len(chosen) < remove or len(history) <= remove:
            continue
        base = score(observed.hetero, u, i, emb)
        with torch.no_grad():
            d_e = base - score(_without_history(snap, mask, u, np.asarray(chosen)).hetero, u, i)
            rand = rng.choice(history, size=remove, replace=False)
            d_r = base - score(_without_history(snap, mask, u, rand).hetero, u, i)
            if att is not None:
                sel = att_ei[1] == u
                top_att = att_ei[0][sel][np.argsort(-att_a[sel], kind="stable")][:remove]
                d_a = base - score(_without_history(snap, mask, u, top_att).hetero, u, i)
            else:
                d_a = float("nan")
        drops_e.append(d_e)
        drops_r.append(d_r)
        drops_a.append(d_a)
        if progress:
            progress(n + 1, len(pairs))
    e, r, a = np.asarray(drops_e), np.asarray(drops_r), np.asarray(drops_a)
    k = len(e)
    return FidelityReport(
        pairs=k,
        removed_per_pair=remove,
        mean_drop_explained=float(e.mean()) if k else float("nan"),
        mean_drop_random=float(r.mean()) if k else float("nan"),
        mean_drop_attention=float(np.nanmean(a)) if k else float("nan"),
        explained_wins=float((e > r).mean()) if k else float("nan"),
        attention_wins=float((a > r).mean()) if k else float("nan"),
    )
