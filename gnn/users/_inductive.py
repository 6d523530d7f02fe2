"""EnhancedGAT's representation of one user from their edges, without a full forward pass.

A user's final embedding depends on the graph only through their own edges: with
:class:`~gnn.users._models.EnhancedGAT`'s layers, ``h^{l+1}_u`` is ``h^l_u`` plus the messages
over the edges into ``u`` (``song -listened_by-> user``, ``genre -liked_by-> user``), computed
from the layer-``l`` states of those songs and genres; and the readout's propagation term
``sum_{k=1..L} (A^k h0)_u`` is a sum over ``u``'s songs of their ``(A^{k-1} h0)_s`` values,
each weighted ``1 / sqrt(d_u d_s)``. :class:`UserEncoder` caches, once per trained model and
observed graph, every layer's normalised song and genre states, the songs' propagation terms
and degrees, the final song embeddings and biases and the user-feature statistics; a user is
then encoded from their plays in a few small tensor operations (the ego network through the
trained weights, the usual inductive inference of GraphSAGE or PinSage).

The approximation: the other nodes' states are those of the cached graph. For a user of that
graph whose plays did not change this is exact (``tests/test_api_foldin_gnn.py`` checks it
against the full forward pass). For a new user, or one whose plays changed, the songs and genres
they touch would also move a little if the graph were rebuilt (their messages from this user,
their degrees, their play-count features, the standardisation of the user features);
``benchmarks/foldin.py`` measures that against a full rebuild.

ID embedding of a user the model has not seen (:func:`fit_user_embedding`): the trained ID
embedding table has no row for them, and the mean row carries no taste, so their list was
mostly the genre's popular songs (27% of one-artist listeners got another song of that artist
in their top 10, against 87% with EASE^R). Like the fold-in of a matrix factorisation (ALS's
``recalculate_user``), the row is fitted to the user's plays with everything else fixed: a few
steps of gradient descent on the softmax cross-entropy of their played songs (weighted by play
counts) over every song, starting from and pulled towards the mean row. The readout is linear
in the ID embedding except through the attention weights (scaled by the small LayerScale), so
the fit uses that linear part and the final list comes from a full encoding with the fitted row.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.graph._data import TrainData, genre_multi_hot, user_play_stats
from gnn.users._models import LISTENED, LISTENED_BY, EnhancedGAT, _edge_index, _num_nodes

LIKED_BY = ("genre", "liked_by", "user")

#: Gradient steps, learning rate and pull towards the mean row of :func:`fit_user_embedding`
#: (chosen on validation, see ``benchmarks/foldin.py``).
FIT_STEPS = 30
FIT_LR = 0.5
FIT_L2 = 1e-3


@dataclass(frozen=True)
class UserEdges:
    """One user's edges and features, as ``build_train_data`` would give them.

    Attributes:
        songs: int64 [n] distinct played songs; ``weights``: float32 [n] ``log1p(plays)``.
        genres: int64 [g] genres with a share of the plays; ``shares``: float32 [g].
        x: float32 [F] the user's node features.
        cached: bool [n] the edge to each song is in the cached graph (else it is new: the
            song's degree and propagated state gain this user, see :meth:`UserEncoder.encode`).
    """

    songs: Tensor
    weights: Tensor
    genres: Tensor
    shares: Tensor
    x: Tensor
    cached: Tensor


class UserEncoder:
    """Encodes users of ``model`` from their plays over the cached graph ``observed``.

    Args:
        model: a trained :class:`EnhancedGAT` (eval mode is set).
        observed: the graph the other nodes' states come from (the serving view).

    Raises:
        ValueError: the model has edges into users other than listened_by and liked_by.
    """

    def __init__(self, model: EnhancedGAT, observed: TrainData) -> None:
        unknown = [et for et in model.edge_types if et[2] == "user"]
        unknown = [et for et in unknown if et not in (LISTENED_BY, LIKED_BY)]
        if unknown:
            raise ValueError(f"cannot encode a user from edge types {unknown}")
        self.model = model
        data = observed.hetero
        self.present = [
            et for et in (LISTENED_BY, LIKED_BY) if et in model.edge_types and et in data.edge_types
        ]
        self.user_slot = model._dst_types.index("user")
        captured: list[dict[tuple[str, str, str], Tensor]] = [{} for _ in model.convs]
        hooks = []
        for layer, hetero in enumerate(model.convs):
            for et in self.present:

                def grab(_mod, args, _kwargs, layer=layer, et=et):  # noqa: ANN001, ANN202
                    captured[layer][et] = args[0][0].detach()

                conv = hetero.convs[et]  # type: ignore[index]
                hooks.append(conv.register_forward_pre_hook(grab, with_kwargs=True))
        model.eval()
        try:
            with torch.no_grad():
                emb = model.embed(data)
                h0_user = model._encoder("user")(None, data["user"].get("x"))
                h0_song = model._encoder("song")(None, data["song"].get("x"))
        finally:
            for h in hooks:
                h.remove()
        self.sources = captured
        self.song_emb = emb["song"].detach()
        bias = model.bias(data)
        self.song_bias = None if bias is None else bias.detach()
        num_users, num_songs = _num_nodes(data, "user"), _num_nodes(data, "song")
        listened = _edge_index(data, LISTENED)
        self.song_degree = torch.bincount(listened[1], minlength=num_songs).float()
        # (A^k h0) at the songs, k = 0..L-1: the terms the user's propagation sums.
        self.propagated: list[Tensor] = [h0_song]
        if model.lightgcn_path and model.num_layers > 1:
            adj = model._adjacency(data)
            x = torch.cat([h0_user, h0_song])
            with torch.no_grad():
                for _ in range(model.num_layers - 1):
                    x = adj @ x
                    self.propagated.append(x[num_users:])
        # The user features' statistics over the cached graph (see ``build_train_data``).
        m = observed.matrix
        snap = observed.snapshot
        stats = user_play_stats(m, snap, observed.play_mask)
        self.mu = stats.mean(axis=0)
        sd = stats.std(axis=0)
        sd[sd == 0] = 1.0
        self.sd = sd
        self.song_genre = genre_multi_hot(snap)[0]
        self.matrix = m
        self.mean_id = model._encoder("user").embedding.weight.detach().mean(0)

    def edges(
        self,
        plays: Mapping[int, int],
        skips: Mapping[int, int] | None = None,
        user: int | None = None,
    ) -> UserEdges:
        """A user's edges and node features from ``plays`` (song index -> plays, > 0), of which
        ``skips`` (song index -> skipped plays) were skipped; ``user``: their index in the
        cached graph (None: not in it)."""
        songs = np.fromiter(plays.keys(), dtype=np.int64, count=len(plays))
        order = np.argsort(songs)
        songs = songs[order]
        counts = np.fromiter(plays.values(), dtype=np.float32, count=len(plays))[order]
        total = np.float32(counts.sum())
        skipped = sum(min(int(n), int(plays.get(s, 0))) for s, n in (skips or {}).items())
        stats = np.array(
            [np.log1p(total), np.log1p(np.float32(len(songs))), skipped / max(float(total), 1.0)]
        )
        genre = counts @ self.song_genre[songs]
        norm = genre.sum()
        share = (genre / norm if norm > 0 else np.zeros_like(genre)).astype(np.float32)
        x = np.concatenate([((stats - self.mu) / self.sd).astype(np.float32), share])
        genres = np.flatnonzero(share > 0)
        cached = np.zeros(len(songs), dtype=bool)
        if user is not None:
            m = self.matrix
            cached = np.isin(songs, m.indices[m.indptr[user] : m.indptr[user + 1]])
        return UserEdges(
            cached=torch.from_numpy(cached),
            songs=torch.from_numpy(songs),
            weights=torch.from_numpy(np.log1p(counts).astype(np.float32)),
            genres=torch.from_numpy(genres.astype(np.int64)),
            shares=torch.from_numpy(share[genres]),
            x=torch.from_numpy(x),
        )

    def id_embedding(self, user: int | None) -> Tensor:
        """The trained ID embedding of ``user`` (an index of the cached graph), or the mean row."""
        if user is None:
            return self.mean_id
        return self.model._encoder("user").embedding.weight[user].detach()

    def encode(
        self,
        edges: UserEdges,
        id_emb: Tensor,
        masks: Mapping[tuple[str, str, str], Tensor] | None = None,
    ) -> Tensor:
        """The user's final embedding (float [D]). ``masks`` (edge type -> [n] ones, for
        gradient attributions) multiply each of the user's messages, in every layer and in
        the propagation term, as :func:`gnn.explain.edge_masks` does in a full pass."""
        model = self.model
        enc = model._encoder("user")
        h = id_emb
        if enc.proj is not None and edges.x.numel() == enc.proj.in_features:
            h = h + enc.proj(edges.x)
        h0_user = h
        n = {LISTENED_BY: len(edges.songs), LIKED_BY: len(edges.genres)}
        src = {LISTENED_BY: edges.songs, LIKED_BY: edges.genres}
        weight = {LISTENED_BY: edges.weights, LIKED_BY: edges.shares}
        masks = masks or {}
        for layer, (hetero, norms, scale) in enumerate(
            zip(model.convs, model.norms, model.scales, strict=True)
        ):
            z = norms["user"](h) if model.prenorm and "user" in norms else h  # type: ignore[index]
            out = []
            for et in self.present:
                conv = hetero.convs[et]  # type: ignore[index]
                ei = torch.stack([torch.arange(n[et]), torch.zeros(n[et], dtype=torch.long)])
                attr = weight[et].view(-1, 1) if et in model.weighted_edge_types else None
                if et in masks:
                    conv.explain, conv._edge_mask = True, masks[et]
                    conv._loop_mask = torch.ones(n[et], dtype=torch.bool)
                    conv._apply_sigmoid = False
                try:
                    out.append(
                        conv((self.sources[layer][et][src[et]], z[None]), ei, edge_attr=attr)
                    )
                finally:
                    if et in masks:
                        conv.explain, conv._edge_mask, conv._loop_mask = False, None, None
                        conv._apply_sigmoid = True
            if not out:
                continue
            msg = (torch.stack(out).mean(0) if len(out) > 1 else out[0])[0]
            if model.activation:
                msg = F.elu(msg)
            h = h + scale[self.user_slot] * msg
        if not model.lightgcn_path:
            return h
        # sum_k (A^k h0)_u = sum_s w_us sum_{k<L} (A^k h0)_s with w_us = 1/sqrt(d_u d_s). A new
        # edge adds 1 to the song's degree and this user's h0 to its (A h0)_s, as a rebuilt
        # graph would (exact for two layers; deeper terms keep the cached graph's values).
        # The songs' own final embeddings keep the cached graph's values.
        songs, new = edges.songs, ~edges.cached
        count = self.song_degree[songs]
        deg = count.clamp(min=1).rsqrt()
        d_u = max(len(songs), 1)
        inv = torch.where(new, (count + 1).rsqrt(), deg)
        w = inv * d_u**-0.5
        if LISTENED_BY in masks:
            w = w * masks[LISTENED_BY]
        terms = [p[songs] for p in self.propagated]
        if len(terms) > 1 and bool(new.any()):
            h0 = h0_user[None, :] * (inv * d_u**-0.5)[:, None]
            terms[1] = torch.where(new[:, None], terms[1] * (inv / deg)[:, None] + h0, terms[1])
        acc = sum((w[:, None] * t).sum(0) for t in terms)
        return (h + acc) / (model.num_layers + 1)

    def scores(self, user_emb: Tensor) -> Tensor:
        """Every song's score for a user embedding (float [S])."""
        out = self.song_emb @ user_emb
        return out if self.song_bias is None else out + self.song_bias

    def fit_id_embedding(
        self,
        edges: UserEdges,
        *,
        steps: int = FIT_STEPS,
        lr: float = FIT_LR,
        l2: float = FIT_L2,
    ) -> Tensor:
        """A new user's ID embedding fitted to their plays (see the module docstring).

        The loss is ``-sum_s c_s log softmax(score)_s / sum_s c_s + l2 ||e - mean||^2`` over
        the user's songs ``s`` with play counts ``c_s``, every song a candidate; the score's
        dependence on ``e`` is its linear part ``e . song_emb / (L + 1)`` around the mean row.
        """
        model = self.model
        if steps <= 0 or len(edges.songs) == 0:
            return self.mean_id
        scale = 1.0 / (model.num_layers + 1) if model.lightgcn_path else 1.0
        with torch.no_grad():
            base = self.scores(self.encode(edges, self.mean_id))
            counts = torch.expm1(edges.weights)
            target = torch.zeros_like(base)
            target[edges.songs] = counts / counts.sum()
            # Adam (torch's defaults) on the loss above, its gradient written out:
            # d loss / d logits = softmax(logits) - target.
            delta = torch.zeros_like(self.mean_id)
            m1, m2 = torch.zeros_like(delta), torch.zeros_like(delta)
            b1, b2, eps = 0.9, 0.999, 1e-8
            for t in range(1, steps + 1):
                p = torch.softmax(base + scale * (self.song_emb @ delta), 0)
                grad = scale * (self.song_emb.t() @ (p - target)) + 2 * l2 * delta
                m1.mul_(b1).add_(grad, alpha=1 - b1)
                m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                step = lr / (1 - b1**t)
                denom = (m2 / (1 - b2**t)).sqrt_().add_(eps)
                delta.addcdiv_(m1, denom, value=-step)
        return (self.mean_id + delta).detach()


_encoders: weakref.WeakKeyDictionary[EnhancedGAT, tuple[weakref.ref[TrainData], UserEncoder]] = (
    weakref.WeakKeyDictionary()
)


def user_encoder(model: EnhancedGAT, observed: TrainData) -> UserEncoder:
    """The :class:`UserEncoder` of ``model`` over ``observed`` (one kept per model)."""
    hit = _encoders.get(model)
    if hit is not None and hit[0]() is observed:
        return hit[1]
    enc = UserEncoder(model, observed)
    _encoders[model] = (weakref.ref(observed), enc)
    return enc
