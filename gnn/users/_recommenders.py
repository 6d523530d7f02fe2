"""The graph recommenders: LightGCN, BasicGAT and EnhancedGAT behind the :class:`Recommender`
interface, each with its :class:`GNNConfig` and trainer.

Errors: :class:`spotify_engine.errors.TrainingDiverged` (a NaN or infinite loss or
embedding, naming the epoch) is a ``ModelError`` and a ``RuntimeError``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnn.core._recommender import Recommender
from gnn.graph._data import TrainData
from gnn.users._models import (
    ALL_EDGE_TYPES,
    BasicGAT,
    EdgeType,
    EnhancedGAT,
    LightGCNModel,
    RecModel,
)
from gnn.users._train import AdvancedTrainer, SimpleTrainer, seed_everything
from spotify_engine.errors import ModelError, NotFittedError

log = logging.getLogger(__name__)


@dataclass
class GNNConfig:
    """Hyperparameters of a graph recommender (model and training).

    Attributes:
        embedding_dim: embedding size (default 64).
        num_layers: message-passing layers (default 2).
        heads: attention heads (GAT models; default 2).
        dropout: dropout (GAT models; default 0.1).
        lr: Adam learning rate (default 5e-3).
        weight_decay: L2 weight on the batch's ID embeddings (default 1e-4).
        batch_size: positive edges per step (default 4096).
        epochs: maximum epochs (default 30).
        patience: early-stopping patience in epochs, with validation (default 5).
        hard_negatives: negative candidates per positive, hardest kept (default 1).
        message_edge_frac: listened edges kept per step for message passing (default 1.0).
        exclude_batch_edges: remove a step's positives from its message graph (default True).
        neighbor_loader: train on ``LinkNeighborLoader`` subgraphs (default False).
        num_neighbors: neighbours per hop for the loader (default (10, 10)).
        eval_k: validation cut-off (default 10).
        lr_factor, lr_patience: ``ReduceLROnPlateau`` settings (default 0.5, 2).
        seed: random seed (default 0).
        num_threads: torch CPU threads (default None: leave torch's setting). On tiny graphs
            or a busy machine 1 is much faster than 2 (OpenMP synchronisation dominates).
        checkpoint_path: where to save the best state dict (default None: memory only).
        max_seconds: training time budget with validation (default None; see
            :class:`gnn.users._train.AdvancedTrainer`).
        loss: "bpr" (pairs, one sampled negative each) or "softmax" (``batch_size`` users per
            step, held-out listened edges scored against every song; default "bpr").
        model_kwargs: extra keyword arguments of the model class.
    """

    embedding_dim: int = 64
    num_layers: int = 2
    heads: int = 2
    dropout: float = 0.1
    lr: float = 5e-3
    weight_decay: float = 1e-4
    batch_size: int = 4096
    epochs: int = 30
    patience: int = 5
    hard_negatives: int = 1
    message_edge_frac: float = 1.0
    exclude_batch_edges: bool = True
    neighbor_loader: bool = False
    num_neighbors: tuple[int, ...] = (10, 10)
    eval_k: int = 10
    lr_factor: float = 0.5
    lr_patience: int = 2
    seed: int = 0
    num_threads: int | None = None
    checkpoint_path: str | None = None
    max_seconds: float | None = None
    loss: str = "bpr"
    model_kwargs: dict[str, Any] = field(default_factory=dict)


class _GNNRecommender(Recommender):
    """A :class:`Recommender` backed by a :class:`RecModel` trained with BPR.

    Args:
        config: hyperparameters (default: the class's :meth:`default_config`).
        **overrides: fields of :class:`GNNConfig` replacing those of ``config``.
    """

    name = "gnn"

    def __init__(self, config: GNNConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else self.default_config()
        unknown = set(overrides) - {f.name for f in dataclasses.fields(GNNConfig)}
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} option(s): {sorted(unknown)}")
        self.config = dataclasses.replace(base, **overrides)
        self.model: RecModel | None = None
        self.history: list[dict[str, Any]] = []
        self._cache: tuple[weakref.ref[TrainData], dict[str, Tensor]] | None = None

    @classmethod
    def default_config(cls) -> GNNConfig:
        return GNNConfig()

    def build_model(self, train: TrainData) -> RecModel:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(
        self,
        train: TrainData,
        *,
        val: tuple[TrainData, list[np.ndarray]] | None = None,
    ) -> dict[str, Any]:
        cfg = self.config
        seed_everything(cfg.seed, cfg.num_threads)
        self.model = self.build_model(train)
        self._cache = None
        common: dict[str, Any] = {
            "lr": cfg.lr,
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "weight_decay": cfg.weight_decay,
            "hard_negatives": cfg.hard_negatives,
            "message_edge_frac": cfg.message_edge_frac,
            "exclude_batch_edges": cfg.exclude_batch_edges,
            "neighbor_loader": cfg.neighbor_loader,
            "num_neighbors": cfg.num_neighbors,
            "seed": cfg.seed,
            "num_threads": cfg.num_threads,
            "loss": cfg.loss,
        }
        t0 = time.perf_counter()
        trainer: SimpleTrainer
        if val is None:
            trainer = SimpleTrainer(self.model, train, **common)
        else:
            trainer = AdvancedTrainer(
                self.model,
                train,
                val,
                patience=cfg.patience,
                lr_factor=cfg.lr_factor,
                lr_patience=cfg.lr_patience,
                eval_k=cfg.eval_k,
                checkpoint_path=cfg.checkpoint_path,
                max_seconds=cfg.max_seconds,
                **common,
            )
        self.history = trainer.fit()
        info: dict[str, Any] = {
            "epochs": trainer.epoch,
            "seconds": time.perf_counter() - t0,
            "num_parameters": self.num_parameters(),
            "history": {key: [row.get(key) for row in self.history] for key in self.history[0]},
        }
        if isinstance(trainer, AdvancedTrainer):
            info["best_epoch"] = trainer.best_epoch
            info["best_val_ndcg"] = trainer.best_score
            info["stopped_early"] = trainer.stopped_early
        return info

    def embeddings(self, observed: TrainData) -> dict[str, Tensor]:
        """Final embeddings from message passing over ``observed.hetero`` (cached per view)."""
        if self.model is None:
            raise NotFittedError(f"{self.name}: call fit before score or recommend")
        if self._cache is not None and self._cache[0]() is observed:
            return self._cache[1]
        self.model.eval()
        with torch.no_grad():
            emb = self.model.embed(observed.hetero)
        for nt in ("user", "song"):
            if not torch.isfinite(emb[nt]).all():
                raise ModelError(f"{self.name}: {nt} embeddings contain NaN or infinity")
        self._cache = (weakref.ref(observed), emb)
        return emb

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        emb = self.embeddings(observed)
        assert self.model is not None
        with torch.no_grad():
            idx = torch.as_tensor(np.asarray(users, dtype=np.int64))
            out = self.model.score_all(observed.hetero, emb, idx)
        return out.numpy().astype(np.float32, copy=False)

    def num_parameters(self) -> int:
        if self.model is None:
            return 0
        return sum(p.numel() for p in self.model.parameters())

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{type(self).__name__}(dim={c.embedding_dim}, layers={c.num_layers}, lr={c.lr}, "
            f"batch_size={c.batch_size}, epochs={c.epochs})"
        )


class LightGCNRecommender(_GNNRecommender):
    """LightGCN (user-song graph only) trained with BPR; see :class:`GNNConfig`."""

    name = "lightgcn"

    @classmethod
    def default_config(cls) -> GNNConfig:
        return GNNConfig(lr=1e-2, batch_size=4096, weight_decay=1e-4, exclude_batch_edges=False)

    def build_model(self, train: TrainData) -> RecModel:
        c = self.config
        return LightGCNModel(
            train.num_users, train.num_songs, c.embedding_dim, c.num_layers, **c.model_kwargs
        )


class BasicGATRecommender(_GNNRecommender):
    """:class:`gnn.users._models.BasicGAT` trained with BPR (default embedding size 16)."""

    name = "basic_gat"

    @classmethod
    def default_config(cls) -> GNNConfig:
        return GNNConfig(embedding_dim=16, dropout=0.0, lr=1e-2, batch_size=4096)

    def build_model(self, train: TrainData) -> RecModel:
        c = self.config
        return BasicGAT.from_data(
            train.hetero,
            embedding_dim=c.embedding_dim,
            heads=c.heads,
            num_layers=c.num_layers,
            dropout=c.dropout,
            **c.model_kwargs,
        )


#: Edge types of the user task: every one but the playlists'. A playlist cannot be placed on
#: each user's timeline (it has one ``modified_at``, and its tracks are its latest version), so
#: under the per-user temporal split its tracks can hold a user's held-out listening: the path
#: user -> song -> playlist -> song would leak it. (Validation NDCG@10 barely moves without them:
#: 0.0926 vs 0.0938, BPR defaults on the quality benchmark's data.)
USER_TASK_EDGE_TYPES: tuple[EdgeType, ...] = tuple(
    et for et in ALL_EDGE_TYPES if "playlist" not in (et[0], et[2])
)


class EnhancedGATRecommender(_GNNRecommender):
    """:class:`gnn.users._models.EnhancedGAT` over :data:`USER_TASK_EDGE_TYPES`, trained with BPR
    against the hardest of ``hard_negatives`` sampled songs (default 8), within a training
    budget of ``max_seconds`` (default 300 s: with validation, training ends before an epoch
    that would end past it, or earlier by early stopping, and the best epoch is kept; in
    ``train_and_select`` with a budget it gets what the other candidates leave)."""

    name = "enhanced_gat"

    @classmethod
    def default_config(cls) -> GNNConfig:
        return GNNConfig(
            lr=1e-2,
            batch_size=8192,
            dropout=0.1,
            message_edge_frac=0.5,
            hard_negatives=8,
            max_seconds=300.0,
        )

    def build_model(self, train: TrainData) -> RecModel:
        c = self.config
        kwargs = dict(c.model_kwargs)
        kwargs.setdefault(
            "edge_types", [et for et in USER_TASK_EDGE_TYPES if et in train.hetero.edge_types]
        )
        return EnhancedGAT.from_data(
            train.hetero,
            embedding_dim=c.embedding_dim,
            heads=c.heads,
            num_layers=c.num_layers,
            dropout=c.dropout,
            **kwargs,
        )
