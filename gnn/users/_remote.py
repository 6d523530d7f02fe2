"""Mini-batch training sampled from Neo4j through the remote-backend stores (issue 15).

A worker that trains this way holds the model's parameters, the node catalog (each type's ids,
from :class:`gnn.graph.Neo4jGraphStore`) and one sampled subgraph at a time; the edges stay
in Neo4j. Each step:

1. draws ``batch_users`` users at random (dense indices of the catalog);
2. asks Neo4j for up to ``fanout[0]`` songs of each (``sample_neighbors``); one of them is the
   user's positive, held out of the message graph, the others are message edges;
3. asks Neo4j for up to ``fanout[1]`` listeners of each of those songs (the second hop);
4. draws one uniform negative song per positive (it may, rarely, be a song the user played:
   the worker does not hold the user's history, as with PyG's ``LinkNeighborLoader``);
5. runs the model over the subgraph (``n_id`` carries the global indices its ID embeddings
   are looked up by) and takes one BPR step.

The model is :class:`gnn.users._models.LightGCNModel` (ID embeddings, no node features), so
the feature store is not needed; a model with features would read the sampled rows through
:class:`gnn.graph.Neo4jFeatureStore` the same way.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch_geometric.data import HeteroData

from gnn.graph._data import EDGE_TYPES
from gnn.graph._store import Neo4jGraphStore
from gnn.users._models import LISTENED, LightGCNModel
from gnn.users._sampling import bpr_loss

log = logging.getLogger(__name__)


class Neo4jSampledTrainer:
    """BPR steps of a :class:`LightGCNModel` on subgraphs sampled from Neo4j.

    Args:
        model: sized for the catalog (``num_users``, ``num_songs`` of the graph store).
        graph_store: the Neo4j graph store (its catalog gives the node counts).
        batch_users: users per step (default 256).
        fanout: songs per user, then listeners per song (default ``(10, 5)``).
        lr: Adam learning rate (default 1e-2). weight_decay: L2 on the batch's ID embeddings
            (default 1e-4). seed: default 0.

    Attributes:
        history: per step ``loss``, ``users``, ``songs``, ``edges`` (the subgraph's size).
    """

    def __init__(
        self,
        model: LightGCNModel,
        graph_store: Neo4jGraphStore,
        *,
        batch_users: int = 256,
        fanout: tuple[int, int] = (10, 5),
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        users = graph_store.catalog.num_nodes("user")
        songs = graph_store.catalog.num_nodes("song")
        if (model.num_users, model.num_songs) != (users, songs):
            raise ValueError(
                f"model was built for {model.num_users} users / {model.num_songs} songs, the "
                f"graph has {users} / {songs}"
            )
        if batch_users < 1 or min(fanout) < 1:
            raise ValueError(f"batch_users and fanout must be >= 1 (got {batch_users}, {fanout})")
        self.model, self.store = model, graph_store
        self.batch_users, self.fanout = batch_users, tuple(fanout)
        self.weight_decay = weight_decay
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.history: list[dict[str, Any]] = []

    def sample(self) -> tuple[HeteroData, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One subgraph and its (user, positive, negative) triples in local indices."""
        n_users, n_songs = self.model.num_users, self.model.num_songs
        seeds = self.rng.choice(n_users, size=min(self.batch_users, n_users), replace=False)
        songs, owners = self.store.sample_neighbors(
            EDGE_TYPES[LISTENED], np.sort(seeds), self.fanout[0]
        )
        if len(songs) == 0:
            raise ValueError("the sampled users have no LISTENED song")
        # the first sampled song of each user is its positive (the sample is random already)
        first = np.ones(len(owners), dtype=bool)
        first[1:] = owners[1:] != owners[:-1]
        pos_u, pos_s = owners[first], songs[first]
        msg_u, msg_s = owners[~first], songs[~first]
        hop2_u, hop2_s = self.store.sample_neighbors(LISTENED, np.unique(msg_s), self.fanout[1])
        # a second-hop edge may be a seed's held-out positive: leave those out as well
        held = set(zip(pos_u.tolist(), pos_s.tolist(), strict=True))
        keep = np.array(
            [(u, s) not in held for u, s in zip(hop2_u.tolist(), hop2_s.tolist(), strict=True)],
            dtype=bool,
        )
        msg_u = np.concatenate([msg_u, hop2_u[keep]])
        msg_s = np.concatenate([msg_s, hop2_s[keep]])
        neg_s = self.rng.integers(0, n_songs, len(pos_u))
        user_ids = np.unique(np.concatenate([pos_u, msg_u]))
        song_ids = np.unique(np.concatenate([pos_s, neg_s, msg_s]))
        pair = np.unique(np.vstack([msg_u, msg_s]), axis=1)
        data = HeteroData()
        data["user"].n_id = torch.from_numpy(user_ids)
        data["user"].num_nodes = len(user_ids)
        data["song"].n_id = torch.from_numpy(song_ids)
        data["song"].num_nodes = len(song_ids)
        local = np.vstack(
            [np.searchsorted(user_ids, pair[0]), np.searchsorted(song_ids, pair[1])]
        ).astype(np.int64)
        data[LISTENED].edge_index = torch.from_numpy(local)
        data[EDGE_TYPES[LISTENED]].edge_index = torch.from_numpy(local[::-1].copy())

        def loc(ids: np.ndarray, values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.searchsorted(ids, values).astype(np.int64))

        return data, loc(user_ids, pos_u), loc(song_ids, pos_s), loc(song_ids, neg_s)

    def step(self) -> float:
        """Sample a subgraph from Neo4j and take one BPR step on it; returns the loss."""
        data, users, pos, neg = self.sample()
        self.model.train()
        emb = self.model.embed(data)
        loss = bpr_loss(
            self.model.score_pairs(data, emb, users, pos),
            self.model.score_pairs(data, emb, users, neg),
        )
        if self.weight_decay > 0:
            gu, gs = data["user"].n_id, data["song"].n_id
            reg = (
                self.model.id_embedding("user", gu[users]).pow(2).sum()
                + self.model.id_embedding("song", gs[pos]).pow(2).sum()
                + self.model.id_embedding("song", gs[neg]).pow(2).sum()
            )
            loss = loss + self.weight_decay * reg / (2 * users.numel())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = float(loss.detach())
        self.history.append(
            {
                "loss": value,
                "users": int(data["user"].num_nodes),
                "songs": int(data["song"].num_nodes),
                "edges": int(data[LISTENED].edge_index.size(1)),
            }
        )
        return value
