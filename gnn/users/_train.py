"""The BPR trainers of the graph models: full-graph (SimpleTrainer) and sampled (AdvancedTrainer).

Objective: Bayesian personalised ranking over positive (user, song) edges of the training
view, each paired with a negative song drawn uniformly among the songs the user has not
played in training (vectorised rejection sampling, then exact draws for the rare rows still
colliding). With ``hard_negatives = n > 1``, n candidates are drawn per positive and the one
the current model scores highest is kept. L2 regularisation acts on the
layer-0 ID embeddings of the batch (as in LightGCN), not on every weight.

Message passing: by default every mini-batch of positives runs the model over the whole
training graph (graphs here are small) less the batch's own positive edges
(``exclude_batch_edges``: otherwise the model can find each answer among its inputs and
overfits to it). ``message_edge_frac < 1`` also keeps only that random fraction of the other
listened edges for each step (edge dropout: cheaper and a regulariser; ranking always uses the
full observed graph). ``neighbor_loader=True`` trains on
``LinkNeighborLoader`` subgraphs around each mini-batch instead, for graphs too large for a
full forward per step; its negatives are the loader's uniform "triplet" negatives (they may
occasionally be positives).

Errors: :class:`spotify_engine.errors.TrainingDiverged` (a NaN or infinite loss or
embedding, naming the epoch) is a ``ModelError`` and a ``RuntimeError``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NegativeSampling

from gnn.core._metrics import ndcg_at_k, recall_at_k
from gnn.graph._data import TrainData
from gnn.users._models import LISTENED, LISTENED_BY, RecModel
from gnn.users._sampling import LOSSES, _History, _native_sampling, _TorchNeighborSampler, bpr_loss
from spotify_engine.errors import TrainingDiverged

log = logging.getLogger(__name__)


def seed_everything(seed: int, num_threads: int | None = None) -> None:
    """Fix torch and numpy seeds; optionally set the number of CPU threads torch uses."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 (got {num_threads})")
        torch.set_num_threads(num_threads)


def _check_finite_params(model: torch.nn.Module, epoch: int) -> None:
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise TrainingDiverged(f"parameter {name} is NaN or infinite after epoch {epoch}")


class SimpleTrainer:
    """BPR training of a :class:`gnn.users._models.RecModel` on all positive edges of a view.

    Args:
        model: the model to train (its ID tables must match ``train``'s node counts).
        train: the training view; positives are its distinct (user, song) pairs.
        lr: Adam learning rate (default 5e-3).
        epochs: epochs :meth:`fit` runs (default 20).
        batch_size: positive edges per step (default 4096).
        weight_decay: L2 weight on the batch's layer-0 ID embeddings (default 1e-4).
        hard_negatives: negative candidates per positive; the highest-scoring one is kept
            (default 1: plain uniform sampling).
        message_edge_frac: fraction of listened edges kept for each step's message passing
            (default 1.0: the full graph).
        exclude_batch_edges: drop the step's positive edges from its message-passing graph,
            so the model cannot find the answer among its own inputs (default True).
        neighbor_loader: train on ``LinkNeighborLoader`` subgraphs (default False).
        num_neighbors: neighbours sampled per hop and edge type with ``neighbor_loader``
            (default ``(10, 10)``).
        seed: seed of torch, numpy and the sampling generator (default 0).
        num_threads: CPU threads for torch (default None: leave as is).
        loss: "bpr" (default) or "softmax": ``batch_size`` then counts users per step, and
            each step's targets are the batch users' listened edges held out of its message
            graph (see :meth:`_softmax_batches`).

    Attributes:
        history: one dict per epoch (``epoch``, ``loss``, ``lr``, ``seconds``).
    """

    def __init__(
        self,
        model: RecModel,
        train: TrainData,
        *,
        lr: float = 5e-3,
        epochs: int = 20,
        batch_size: int = 4096,
        weight_decay: float = 1e-4,
        hard_negatives: int = 1,
        message_edge_frac: float = 1.0,
        exclude_batch_edges: bool = True,
        neighbor_loader: bool = False,
        num_neighbors: Sequence[int] = (10, 10),
        seed: int = 0,
        num_threads: int | None = None,
        loss: str = "bpr",
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {loss!r})")
        if loss == "softmax" and neighbor_loader:
            raise ValueError("loss='softmax' needs full-graph steps (got neighbor_loader=True)")
        if lr <= 0:
            raise ValueError(f"lr must be > 0 (got {lr})")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1 (got {epochs})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
        if hard_negatives < 1:
            raise ValueError(f"hard_negatives must be >= 1 (got {hard_negatives})")
        if not 0 < message_edge_frac <= 1:
            raise ValueError(f"message_edge_frac must be in (0, 1] (got {message_edge_frac})")
        if model.num_users != train.num_users or model.num_songs != train.num_songs:
            raise ValueError(
                f"model was built for {model.num_users} users / {model.num_songs} songs, "
                f"the view has {train.num_users} / {train.num_songs}"
            )
        seed_everything(seed, num_threads)
        self.model, self.train = model, train
        self.lr, self.epochs, self.batch_size = lr, epochs, batch_size
        self.weight_decay, self.hard_negatives = weight_decay, hard_negatives
        self.message_edge_frac = message_edge_frac
        self.exclude_batch_edges = exclude_batch_edges
        self.neighbor_loader, self.num_neighbors = neighbor_loader, list(num_neighbors)
        self.seed, self.loss = seed, loss
        self.gen = torch.Generator().manual_seed(seed)
        if LISTENED in train.hetero.edge_types:
            # positives are the listened edges themselves, so a batch can be masked out of them
            self.pos_users, self.pos_songs = train.hetero[LISTENED].edge_index
        else:
            coo = train.matrix.tocoo()
            self.pos_users = torch.as_tensor(coo.row, dtype=torch.long)
            self.pos_songs = torch.as_tensor(coo.col, dtype=torch.long)
        if self.pos_users.numel() == 0:
            raise ValueError("the training view has no (user, song) edge to train on")
        self.history_set = _History(self.pos_users, self.pos_songs, train.num_songs)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self._loader: LinkNeighborLoader | None = None

    # -- one step ------------------------------------------------------------------------
    def _keep_mask(self) -> Tensor:
        """A random ``message_edge_frac`` of the listened edges (all of them at 1.0)."""
        n = self.pos_users.numel()
        if self.message_edge_frac < 1:
            return torch.rand(n, generator=self.gen) < self.message_edge_frac
        return torch.ones(n, dtype=torch.bool)

    def _message_graph(self, batch: Tensor) -> HeteroData:
        """The graph of one step: listened edges of ``batch`` (edge ids) and a random
        ``1 - message_edge_frac`` of the others removed."""
        data = self.train.hetero
        if LISTENED not in data.edge_types or (
            self.message_edge_frac >= 1 and not self.exclude_batch_edges
        ):
            return data
        keep = self._keep_mask()
        if self.exclude_batch_edges:
            keep[batch] = False
        return self._listened_subgraph(keep)

    def _listened_subgraph(self, keep: Tensor) -> HeteroData:
        """The training graph with only the listened edges (and reverses) where ``keep``."""
        data = self.train.hetero
        if bool(keep.all()):
            return data
        sub = copy.copy(data)
        n = data[LISTENED].edge_index.size(1)
        for et in (LISTENED, LISTENED_BY):
            if et not in data.edge_types or data[et].edge_index.size(1) != n:
                continue
            sub[et].edge_index = data[et].edge_index[:, keep]
            if data[et].get("edge_weight") is not None:
                sub[et].edge_weight = data[et].edge_weight[keep]
        return sub

    def _pick_negative(
        self, data: HeteroData, emb: dict[str, Tensor], users: Tensor, cands: Tensor
    ) -> Tensor:
        """The highest-scoring candidate per row (local indices).

        Shapes:
            users: [B], cands: [B, n] -> [B]
        """
        if cands.dim() == 1 or cands.size(1) == 1:
            return cands.view(-1)
        with torch.no_grad():
            s = self.model.score_pairs(data, emb, users.view(-1, 1).expand_as(cands), cands)
        return cands.gather(1, s.argmax(1, keepdim=True)).squeeze(1)

    def _loss(
        self,
        data: HeteroData,
        emb: dict[str, Tensor],
        users: Tensor,
        pos: Tensor,
        neg: Tensor,
        global_ids: tuple[Tensor, Tensor, Tensor],
    ) -> Tensor:
        loss = bpr_loss(
            self.model.score_pairs(data, emb, users, pos),
            self.model.score_pairs(data, emb, users, neg),
        )
        if self.weight_decay > 0:
            gu, gp, gn = global_ids
            reg = (
                self.model.id_embedding("user", gu).pow(2).sum()
                + self.model.id_embedding("song", gp).pow(2).sum()
                + self.model.id_embedding("song", gn).pow(2).sum()
            )
            loss = loss + self.weight_decay * reg / (2 * users.numel())
        return loss

    def _full_graph_batches(self):
        perm = torch.randperm(self.pos_users.numel(), generator=self.gen)
        for start in range(0, perm.numel(), self.batch_size):
            idx = perm[start : start + self.batch_size]
            users, pos = self.pos_users[idx], self.pos_songs[idx]
            data = self._message_graph(idx)
            emb = self.model.embed(data)
            cands = self.history_set.sample(users, self.hard_negatives, self.gen)
            neg = self._pick_negative(data, emb, users, cands)
            yield self._loss(data, emb, users, pos, neg, (users, pos, neg))

    def _softmax_step_graph(
        self, users: Tensor
    ) -> tuple[HeteroData, tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """Message graph and targets of one softmax step for the batch ``users``.

        Targets are the batch users' listened edges that the step's random
        ``1 - message_edge_frac`` drop removed from the message graph (with
        ``exclude_batch_edges``; if none was dropped, all of them are held out), or every
        listened edge of the batch users without it. The batch users' other listened edges
        (message inputs) are returned too: they are known positives, so the loss leaves them
        out of the softmax instead of treating them as negatives.

        Shapes:
            users: int64 [B] -> (graph, (target users [T], target songs [T]),
            (input users [I], input songs [I])), all int64
        """
        in_batch = torch.zeros(self.train.num_users, dtype=torch.bool)
        in_batch[users] = True
        in_batch = in_batch[self.pos_users]
        keep = self._keep_mask()
        if self.exclude_batch_edges:
            target = in_batch & ~keep
            if not bool(target.any()):
                target, keep = in_batch, keep & ~in_batch
        else:
            target = in_batch
        known = in_batch & ~target
        return (
            self._listened_subgraph(keep),
            (self.pos_users[target], self.pos_songs[target]),
            (self.pos_users[known], self.pos_songs[known]),
        )

    def _softmax_batches(self):
        """Steps of the multinomial objective, ``batch_size`` users per step: the model ranks
        every song for each batch user from the step's message graph, and the loss is the mean
        negative log-softmax of the held-out targets over the songs not already known to be
        the user's (see :meth:`_softmax_step_graph`)."""
        users_all = torch.unique(self.pos_users)
        perm = users_all[torch.randperm(users_all.numel(), generator=self.gen)]
        row = torch.full((self.train.num_users,), -1, dtype=torch.long)
        for start in range(0, perm.numel(), self.batch_size):
            users = perm[start : start + self.batch_size]
            row[users] = torch.arange(users.numel())
            data, (t_users, t_songs), (k_users, k_songs) = self._softmax_step_graph(users)
            emb = self.model.embed(data)
            logits = self.model.score_all(data, emb, users)
            logits = logits.index_put((row[k_users], k_songs), torch.tensor(-math.inf))
            logp = torch.log_softmax(logits, dim=1)
            loss = -logp[row[t_users], t_songs].mean()
            if self.weight_decay > 0:
                reg = (
                    self.model.id_embedding("user", users).pow(2).sum()
                    + self.model.id_embedding("song", t_songs).pow(2).sum()
                )
                loss = loss + self.weight_decay * reg / (2 * t_users.numel())
            yield loss

    def _make_loader(self) -> LinkNeighborLoader:
        data = self.train.hetero
        label_index = torch.stack([self.pos_users, self.pos_songs])
        kwargs: dict[str, Any] = {}
        hops = {et: self.num_neighbors for et in data.edge_types}
        if not _native_sampling():
            kwargs["neighbor_sampler"] = _TorchNeighborSampler(data, num_neighbors=hops)
        return LinkNeighborLoader(
            data,
            num_neighbors=hops,
            edge_label_index=(LISTENED, label_index),
            neg_sampling=NegativeSampling("triplet", amount=self.hard_negatives),
            batch_size=self.batch_size,
            shuffle=True,
            **kwargs,
        )

    def _subgraph_batches(self):
        if self._loader is None:
            self._loader = self._make_loader()
        for batch in self._loader:
            emb = self.model.embed(batch)
            users = batch["user"].src_index
            pos = batch["song"].dst_pos_index
            cands = batch["song"].dst_neg_index
            neg = self._pick_negative(batch, emb, users, cands.view(users.numel(), -1))
            u_id, s_id = batch["user"].n_id, batch["song"].n_id
            yield self._loss(batch, emb, users, pos, neg, (u_id[users], s_id[pos], s_id[neg]))

    def train_epoch(self) -> float:
        """One pass over the positive edges; returns the mean loss.

        Raises:
            TrainingDiverged: a batch loss or a parameter became NaN or infinite.
        """
        self.model.train()
        self.epoch += 1
        total, count = 0.0, 0
        if self.loss == "softmax":
            batches = self._softmax_batches()
        elif self.neighbor_loader:
            batches = self._subgraph_batches()
        else:
            batches = self._full_graph_batches()
        for i, loss in enumerate(batches):
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"loss is {value} at epoch {self.epoch} (batch {i}); "
                    f"try a lower lr (got {self.lr})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += value
            count += 1
        _check_finite_params(self.model, self.epoch)
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(
        self,
        observed: TrainData,
        relevant: Sequence[np.ndarray],
        k: int = 10,
        batch_size: int = 1024,
    ) -> dict[str, float]:
        """NDCG@k and Recall@k of the current model, ranking over ``observed``.

        Users without a relevant song are skipped; songs in a user's observed history are
        never recommended.

        Returns:
            ``{"ndcg": ..., "recall": ..., "n_users": ...}`` (NaN metrics if no user).
        """
        was_training = self.model.training
        self.model.eval()
        try:
            users = np.array([u for u in range(observed.num_users) if len(relevant[u])])
            if users.size == 0:
                return {"ndcg": math.nan, "recall": math.nan, "n_users": 0}
            data = observed.hetero
            emb = self.model.embed(data)
            k = min(k, observed.num_songs)
            recs = np.empty((users.size, k), dtype=np.int64)
            for start in range(0, users.size, batch_size):
                chunk = users[start : start + batch_size]
                scores = self.model.score_all(data, emb, torch.as_tensor(chunk))
                if not torch.isfinite(scores).all():
                    raise TrainingDiverged(f"embeddings are NaN or infinite at epoch {self.epoch}")
                seen = observed.matrix[chunk].tocoo()
                scores[
                    torch.as_tensor(seen.row), torch.as_tensor(seen.col, dtype=torch.long)
                ] = -math.inf
                recs[start : start + chunk.size] = torch.topk(scores, k, dim=1).indices.numpy()
            rel = [relevant[u] for u in users]
            return {
                "ndcg": float(np.mean(ndcg_at_k(recs, rel, k))),
                "recall": float(np.mean(recall_at_k(recs, rel, k))),
                "n_users": int(users.size),
            }
        finally:
            self.model.train(was_training)

    def _record(self, loss: float, seconds: float, **extra: Any) -> dict[str, Any]:
        row = {
            "epoch": self.epoch,
            "loss": loss,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "seconds": seconds,
            **extra,
        }
        self.history.append(row)
        return row

    def fit(self) -> list[dict[str, Any]]:
        """Run ``epochs`` epochs; returns :attr:`history`."""
        for _ in range(self.epochs):
            t0 = time.perf_counter()
            loss = self.train_epoch()
            row = self._record(loss, time.perf_counter() - t0)
            log.info("epoch %d loss %.4f (%.1fs)", row["epoch"], loss, row["seconds"])
        self.model.eval()
        return self.history


class AdvancedTrainer(SimpleTrainer):
    """:class:`SimpleTrainer` plus validation: early stopping, LR schedule, best checkpoint.

    After every epoch the model is ranked on the validation view; the epoch with the best
    NDCG@``eval_k`` is kept (state dict in memory, and in ``checkpoint_path`` if given) and
    restored at the end. Training stops after ``patience`` epochs without an improvement of at
    least ``min_delta``; ``ReduceLROnPlateau`` lowers the learning rate on shorter plateaus.

    Args:
        model, train: as for :class:`SimpleTrainer`.
        val: ``(observed view, relevant songs per user)`` for validation.
        patience: epochs without improvement before stopping (default 5).
        min_delta: smallest NDCG gain that counts as an improvement (default 1e-4).
        lr_factor: factor of ``ReduceLROnPlateau`` (default 0.5).
        lr_patience: patience of ``ReduceLROnPlateau`` (default 2).
        eval_k: cut-off of the validation metrics (default 10).
        checkpoint_path: also save the best state dict there (default None).
        max_seconds: training time budget (default None): the first epoch always runs; after
            each, training stops when another epoch as long as the last one would end past
            the budget, so it ends within it unless one epoch is longer than the budget.
        **kwargs: passed to :class:`SimpleTrainer`.

    Attributes:
        history: per epoch ``epoch, loss, val_ndcg, val_recall, lr, seconds``.
        best_epoch, best_score, best_state: the kept checkpoint.
        stopped_early: whether patience ran out before ``epochs``.
    """

    def __init__(
        self,
        model: RecModel,
        train: TrainData,
        val: tuple[TrainData, Sequence[np.ndarray]],
        *,
        patience: int = 5,
        min_delta: float = 1e-4,
        lr_factor: float = 0.5,
        lr_patience: int = 2,
        eval_k: int = 10,
        checkpoint_path: str | Path | None = None,
        max_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, train, **kwargs)
        observed, relevant = val
        if len(relevant) != observed.num_users:
            raise ValueError(
                f"val relevant must have one entry per user: {observed.num_users} "
                f"(got {len(relevant)})"
            )
        if patience < 1:
            raise ValueError(f"patience must be >= 1 (got {patience})")
        self.val = (observed, relevant)
        self.patience, self.min_delta, self.eval_k = patience, min_delta, eval_k
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.max_seconds = max_seconds
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=lr_factor, patience=lr_patience
        )
        self.best_epoch = 0
        self.best_score = -math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.stopped_early = False

    def _keep_best(self, score: float) -> None:
        self.best_score, self.best_epoch = score, self.epoch
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.checkpoint_path is not None:
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(self.best_state, self.checkpoint_path)

    def fit(self) -> list[dict[str, Any]]:
        """Train with early stopping; the best checkpoint is loaded at the end."""
        started = time.perf_counter()
        bad = 0
        for _ in range(self.epochs):
            t0 = time.perf_counter()
            loss = self.train_epoch()
            metrics = self.evaluate(*self.val, k=self.eval_k)
            ndcg = metrics["ndcg"]
            score = -loss if math.isnan(ndcg) else ndcg
            row = self._record(
                loss,
                time.perf_counter() - t0,
                val_ndcg=ndcg,
                val_recall=metrics["recall"],
            )
            self.scheduler.step(score)
            log.info(
                "epoch %d loss %.4f val ndcg@%d %.4f recall %.4f lr %.2g (%.1fs)",
                row["epoch"],
                loss,
                self.eval_k,
                ndcg,
                metrics["recall"],
                row["lr"],
                row["seconds"],
            )
            if score > self.best_score + self.min_delta:
                self._keep_best(score)
                bad = 0
            else:
                bad += 1
                if bad >= self.patience:
                    self.stopped_early = True
                    log.info("early stop at epoch %d (best %d)", self.epoch, self.best_epoch)
                    break
            elapsed = time.perf_counter() - started
            if self.max_seconds is not None and elapsed + row["seconds"] > self.max_seconds:
                log.info(
                    "time budget of %.0fs: %.0fs spent after epoch %d, no room for another",
                    self.max_seconds, elapsed, self.epoch,
                )  # fmt: skip
                break
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        return self.history
