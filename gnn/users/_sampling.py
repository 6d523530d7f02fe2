"""Negative sampling and the BPR loss for the user task.

Negatives are drawn uniformly among the songs the user has not played in training
(vectorised rejection sampling, then exact draws for the rare rows still colliding). With
``hard_negatives = n > 1``, n candidates are drawn per positive and the one the current model
scores highest is kept. ``_TorchNeighborSampler`` is PyG's neighbour sampler on plain torch,
for machines without pyg-lib.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.sampler import HeteroSamplerOutput, NeighborSampler

log = logging.getLogger(__name__)


LOSSES = ("bpr", "softmax")


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Mean BPR loss ``-log sigmoid(pos - neg)``.

    Shapes:
        pos, neg: float [B] -> scalar
    """
    return -F.logsigmoid(pos - neg).mean()


class _History:
    """Membership test for (user, song) pairs of the training history (sorted keys)."""

    def __init__(self, users: Tensor, songs: Tensor, num_songs: int) -> None:
        self.num_songs = num_songs
        self.keys = torch.unique(users * num_songs + songs)
        self._users = self.keys // num_songs  # sorted, like the keys

    def contains(self, users: Tensor, songs: Tensor) -> Tensor:
        keys = users * self.num_songs + songs
        if self.keys.numel() == 0:
            return torch.zeros_like(keys, dtype=torch.bool)
        pos = torch.searchsorted(self.keys, keys).clamp_(max=self.keys.numel() - 1)
        return self.keys[pos] == keys

    def heard(self, user: int) -> Tensor:
        """Sorted songs in the history of one user."""
        lo = int(torch.searchsorted(self._users, user))
        hi = int(torch.searchsorted(self._users, user, right=True))
        return self.keys[lo:hi] - user * self.num_songs

    def sample(self, users: Tensor, n: int, gen: torch.Generator, rounds: int = 4) -> Tensor:
        """``n`` songs per user, uniform over the songs not in the user's history.

        Rejection sampling for ``rounds`` vectorised rounds, then exact draws among the
        unheard songs for the few rows still colliding (users who heard much of the
        catalogue). A user who heard every song gets arbitrary (heard) songs.

        Shapes:
            users: int64 [B] -> int64 [B, n]
        """
        u = users.view(-1, 1).expand(-1, n)
        neg = torch.randint(0, self.num_songs, u.shape, generator=gen)
        hit = self.contains(u, neg)
        for _ in range(rounds):
            count = int(hit.sum())
            if count == 0:
                return neg
            neg[hit] = torch.randint(0, self.num_songs, (count,), generator=gen)
            hit = self.contains(u, neg)
        rows = hit.nonzero()
        for user in torch.unique(u[hit]).tolist():
            allowed = torch.ones(self.num_songs, dtype=torch.bool)
            allowed[self.heard(user)] = False
            pool = allowed.nonzero().view(-1)
            if pool.numel() == 0:
                continue
            mine = rows[u[rows[:, 0], rows[:, 1]] == user]
            pick = torch.randint(0, pool.numel(), (mine.size(0),), generator=gen)
            neg[mine[:, 0], mine[:, 1]] = pool[pick]
        return neg


class _TorchNeighborSampler(NeighborSampler):
    """Heterogeneous neighbour sampling in plain torch, for ``LinkNeighborLoader``.

    PyG samples with ``pyg-lib`` or ``torch-sparse``; where neither is installed this class
    does the same job (uniform sampling without replacement of up to ``num_neighbors[hop]``
    incoming edges per node and edge type, seeds first in each node list) from the CSC
    arrays that :class:`NeighborSampler` already builds. Only the plain, non-temporal,
    non-disjoint case used by the trainer is supported.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyG warns that pyg-lib is missing: that is why
            super().__init__(*args, **kwargs)

    def _sample(self, seed, seed_time=None, **kwargs):  # type: ignore[override]
        if not isinstance(seed, dict) or seed_time is not None or self.disjoint:
            raise NotImplementedError("only non-temporal heterogeneous sampling is supported")
        fanout = self.num_neighbors.get_mapped_values(self.edge_types)
        nodes: dict[str, Tensor] = {}
        local: dict[str, Tensor] = {}
        frontier: dict[str, Tensor] = {}
        for nt in self.node_types:
            s = seed.get(nt, torch.zeros(0, dtype=torch.long)).long()
            nodes[nt] = s
            local[nt] = torch.full((self.num_nodes[nt],), -1, dtype=torch.long)
            local[nt][s] = torch.arange(s.numel())
            frontier[nt] = s
        rows: dict[Any, list[Tensor]] = {et: [] for et in self.edge_types}
        cols: dict[Any, list[Tensor]] = {et: [] for et in self.edge_types}
        edges: dict[Any, list[Tensor]] = {et: [] for et in self.edge_types}
        for hop in range(self.num_neighbors.num_hops):
            added: dict[str, list[Tensor]] = {nt: [] for nt in self.node_types}
            for et in self.edge_types:
                src, _, dst = et
                rel = self.to_rel_type[et]
                k = fanout[rel][hop]
                f = frontier[dst]
                if f.numel() == 0 or k == 0:
                    continue
                colptr, row = self.colptr_dict[rel], self.row_dict[rel]
                start = colptr[f]
                deg = colptr[f + 1] - start
                total = int(deg.sum())
                if total == 0:
                    continue
                owner = torch.repeat_interleave(torch.arange(f.numel()), deg)
                first = torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
                offset = torch.arange(total) - first
                pos = start[owner] + offset
                if k >= 0 and bool((deg > k).any()):
                    order = torch.argsort(owner.double() + torch.rand(total), stable=True)
                    keep = order[offset < k]  # rank within owner = offset after the sort
                    owner, pos = owner[keep], pos[keep]
                src_glob = row[pos]
                new = torch.unique(src_glob[local[src][src_glob] < 0])
                if new.numel():
                    local[src][new] = torch.arange(new.numel()) + nodes[src].numel()
                    nodes[src] = torch.cat([nodes[src], new])
                    added[src].append(new)
                rows[et].append(local[src][src_glob])
                cols[et].append(local[dst][f[owner]])
                edges[et].append(pos)
            frontier = {
                nt: torch.cat(v) if v else torch.zeros(0, dtype=torch.long)
                for nt, v in added.items()
            }

        def cat(d: dict[Any, list[Tensor]]) -> dict[Any, Tensor]:
            return {
                et: torch.cat(v) if v else torch.zeros(0, dtype=torch.long) for et, v in d.items()
            }

        return HeteroSamplerOutput(
            node=nodes, row=cat(rows), col=cat(cols), edge=cat(edges), batch=None
        )


def _native_sampling() -> bool:
    import torch_geometric.typing as pyg_typing

    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)
