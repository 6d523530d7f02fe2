"""Data-parallel training across processes (issue 15): ``torch.distributed`` DDP on CPU (gloo).

Each worker holds the model and the message graph, and draws its BPR positives from its own
shard of the training edges (the shards are disjoint and of equal size); DDP averages the
gradients of every step across the workers, so ``world_size`` workers with ``batch_size``
positives each take the steps one worker would take with ``world_size * batch_size``. The
same function runs with ``world_size=1`` (the single-process reference the test compares
with). Workers are started with ``torch.multiprocessing.spawn`` on this machine and meet
through a rendezvous file; on several machines the same ``train_shard`` runs under
``torchrun`` with a TCP ``init_method`` (docs/operations.md).

The model is :class:`gnn.users._models.LightGCNModel` (ID embeddings propagated over the
user-song graph): every parameter takes part in every step, which DDP needs.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from gnn.graph._data import TrainData
from gnn.users._models import LISTENED, LightGCNModel
from gnn.users._sampling import _History, bpr_loss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardedConfig:
    """Settings of a data-parallel run (per worker where it says so).

    Attributes:
        embedding_dim: default 32. num_layers: LightGCN propagation steps (default 2).
        lr: Adam learning rate (default 1e-2). weight_decay: L2 on the batch's ID embeddings
        (default 1e-4). batch_size: positives per step and worker (default 1024).
        epochs: passes over each worker's shard (default 10). seed: default 0.
    """

    embedding_dim: int = 32
    num_layers: int = 2
    lr: float = 1e-2
    weight_decay: float = 1e-4
    batch_size: int = 1024
    epochs: int = 10
    seed: int = 0


def edge_shard(num_edges: int, rank: int, world_size: int, seed: int = 0) -> Tensor:
    """The edges of worker ``rank``: a seeded permutation cut into ``world_size`` disjoint
    shards of equal size (``num_edges // world_size``; the remainder is left out, so every
    worker takes the same number of steps, as DDP needs).

    Shapes:
        -> int64 [num_edges // world_size]
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be 0..{world_size - 1} (got {rank})")
    perm = torch.randperm(num_edges, generator=torch.Generator().manual_seed(seed))
    size = num_edges // world_size
    return perm[rank * size : (rank + 1) * size]


class _BPRObjective(nn.Module):
    """The step's loss as the module's forward, so that DDP sees (and syncs) it."""

    def __init__(self, model: LightGCNModel, weight_decay: float) -> None:
        super().__init__()
        self.model = model
        self.weight_decay = weight_decay

    def forward(self, data: Any, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        emb = self.model.embed(data)
        loss = bpr_loss(
            self.model.score_pairs(data, emb, users, pos),
            self.model.score_pairs(data, emb, users, neg),
        )
        if self.weight_decay > 0:
            reg = (
                self.model.id_embedding("user", users).pow(2).sum()
                + self.model.id_embedding("song", pos).pow(2).sum()
                + self.model.id_embedding("song", neg).pow(2).sum()
            )
            loss = loss + self.weight_decay * reg / (2 * users.numel())
        return loss


def train_shard(
    rank: int, world_size: int, init_file: str, train: TrainData, cfg: dict[str, Any], out: str
) -> None:
    """One worker: join the group, train on its edge shard, rank 0 saves the state dict and
    its history to ``out`` (``torch.save``)."""
    c = ShardedConfig(**cfg)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        torch.set_num_threads(1)
        torch.manual_seed(c.seed)
        model = LightGCNModel(train.num_users, train.num_songs, c.embedding_dim, c.num_layers)
        ddp = DistributedDataParallel(_BPRObjective(model, c.weight_decay))
        opt = torch.optim.Adam(ddp.parameters(), lr=c.lr)
        users, songs = train.hetero[LISTENED].edge_index
        mine = edge_shard(users.numel(), rank, world_size, c.seed)
        history = _History(users, songs, train.num_songs)
        gen = torch.Generator().manual_seed(c.seed * 1000 + rank)
        data = train.hetero
        losses: list[float] = []
        t0 = time.perf_counter()
        for _ in range(c.epochs):
            order = mine[torch.randperm(mine.numel(), generator=gen)]
            total, steps = 0.0, 0
            for start in range(0, order.numel() - c.batch_size + 1, c.batch_size):
                idx = order[start : start + c.batch_size]
                u, p = users[idx], songs[idx]
                n = history.sample(u, 1, gen).view(-1)
                loss = ddp(data, u, p, n)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                steps += 1
            losses.append(total / max(steps, 1))
        if rank == 0:
            torch.save(
                {
                    "state": model.state_dict(),
                    "loss": losses,
                    "seconds": time.perf_counter() - t0,
                    "shard_edges": int(mine.numel()),
                },
                out,
            )
    finally:
        dist.destroy_process_group()


def train_data_parallel(
    train: TrainData, *, world_size: int = 2, config: ShardedConfig | None = None
) -> tuple[LightGCNModel, dict[str, Any]]:
    """Train one LightGCN with ``world_size`` worker processes on disjoint edge shards.

    Returns the trained model (rank 0's copy; DDP keeps every copy equal) and
    ``{"loss": per-epoch mean loss of rank 0, "seconds", "shard_edges", "world_size"}``.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1 (got {world_size})")
    c = config or ShardedConfig()
    if train.hetero[LISTENED].edge_index.size(1) // world_size < c.batch_size:
        raise ValueError(
            f"each worker's shard must hold at least one batch of {c.batch_size} edges"
        )
    with tempfile.TemporaryDirectory(prefix="ddp-") as tmp:
        init_file = str(Path(tmp) / "rendezvous")
        out = str(Path(tmp) / "rank0.pt")
        torch.multiprocessing.spawn(
            train_shard,
            args=(world_size, init_file, train, asdict(c), out),
            nprocs=world_size,
            join=True,
        )
        saved = torch.load(out, weights_only=True)
    model = LightGCNModel(train.num_users, train.num_songs, c.embedding_dim, c.num_layers)
    model.load_state_dict(saved["state"])
    model.eval()
    info = {k: saved[k] for k in ("loss", "seconds", "shard_edges")}
    info["world_size"] = world_size
    return model, info
