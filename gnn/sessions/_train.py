""":class:`SessionGNN`: the session network trained with a full-softmax cross-entropy over the
catalogue with normalised embeddings (NISER), early stopping on validation MRR@20.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from gnn.sessions._base import SessionModel, _not_fitted
from gnn.sessions._baselines import transition_matrix
from gnn.sessions._data import PrefixBatch, Sessions, iter_batches, positions
from gnn.sessions._evaluate import evaluate_sessions
from gnn.sessions._models import SessionNet, edge_rows
from spotify_engine import errors

log = logging.getLogger(__name__)


class SessionGNN(SessionModel):
    """The session-aware graph model (see :class:`SessionNet`), trained on prefixes.

    Args:
        dim: embedding size (default 64).
        epochs: maximum epochs (default 8); early stopping on validation MRR@20.
        patience: epochs without improvement before stopping (default 2).
        batch_size: prefixes per step (default 512). lr: Adam (default 3e-3).
        weight_decay: Adam (default 0). dropout (default 0.2). scale: logit scale (12).
        max_len: prefix songs the encoder sees (default 20).
        context_dropout: chance of hiding the user and the hour of a training prefix, so the
            model also works without them (default 0.2).
        val_positions: validation positions per check (default 20,000).
        epoch_positions: training prefixes sampled per epoch (default 100,000; None: all).
        negatives: sampled-softmax negatives per step, drawn from half uniform, half
            popularity^0.75 (default 2048); None trains with the full softmax.
        edge_term: add learned weights on the transition probabilities from the last two
            prefix songs (:func:`edge_rows`) to the logits (default True).
        seed: torch and sampling seed (default 0).
        threads: torch threads for the process (default: leave as is; on a busy machine one
            thread is much faster than two that wait for each other).
    """

    name = "sessiongnn"

    def __init__(
        self,
        dim: int = 64,
        epochs: int = 8,
        patience: int = 2,
        batch_size: int = 512,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        dropout: float = 0.2,
        scale: float = 12.0,
        max_len: int = 20,
        context_dropout: float = 0.2,
        val_positions: int = 20_000,
        epoch_positions: int | None = 100_000,
        negatives: int | None = 2048,
        edge_term: bool = True,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1 (got {epochs})")
        self.dim, self.epochs, self.patience = dim, epochs, patience
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.dropout, self.scale, self.max_len = dropout, scale, max_len
        self.context_dropout, self.val_positions = context_dropout, val_positions
        self.epoch_positions, self.negatives = epoch_positions, negatives
        self.edge_term = edge_term
        self.seed, self.threads = seed, threads
        self.net: SessionNet | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def config(self) -> dict[str, Any]:
        keys = (
            *("dim", "epochs", "patience", "batch_size", "lr", "weight_decay", "dropout"),
            *("scale", "max_len", "context_dropout", "val_positions", "epoch_positions"),
            *("negatives", "edge_term", "seed", "threads"),
        )
        return {k: getattr(self, k) for k in keys}

    @staticmethod
    def _graphs(train: Sessions) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        t = transition_matrix(train)
        t.setdiag(0)
        t.eliminate_zeros()
        t.data = np.log1p(t.data)
        out = sp.diags(1.0 / np.maximum(np.asarray(t.sum(axis=1)).ravel(), 1e-12)).dot(t)
        und = t + t.T
        deg = np.asarray(und.sum(axis=1)).ravel()
        d = sp.diags(1.0 / np.sqrt(np.maximum(deg, 1e-12)))
        return d.dot(und).dot(d).tocsr(), out.tocsr()

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        if self.threads:
            torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        sym, out = self._graphs(train)
        self.counts_ = transition_matrix(train)
        net = SessionNet(
            num_songs=train.num_songs,
            num_artists=train.num_artists,
            num_users=train.num_users,
            song_artist=train.song_artist,
            sym=sym,
            out=out,
            dim=self.dim,
            max_len=self.max_len,
            dropout=self.dropout,
            scale=self.scale,
        )
        self.net = net
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        pts = positions(train, exclude_seen=True)
        counts = train.play_counts() + 1.0
        pop = counts**0.75 / np.sum(counts**0.75)
        neg_p = 0.5 * pop + 0.5 / train.num_songs
        history: dict[str, list[float]] = {"loss": [], "val_mrr@20": [], "seconds": []}
        best: tuple[float, int, dict[str, Any]] | None = None
        bad = 0
        for epoch in range(self.epochs):
            t0 = time.perf_counter()
            net.train()
            self._cache = None
            perm = rng.permutation(len(pts))[: self.epoch_positions]
            shuffled = type(pts)(session=pts.session[perm], pos=pts.pos[perm])
            total, steps = 0.0, 0
            for batch, target in iter_batches(train, shuffled, self.max_len, self.batch_size):
                user, hour = batch.user.copy(), batch.hour.copy()
                hide = rng.random(len(user)) < self.context_dropout
                user[hide] = -1
                hour[rng.random(len(hour)) < self.context_dropout] = -1
                loss = self._loss(net, batch, target, user, hour, neg_p, rng)
                if not torch.isfinite(loss):
                    raise errors.ModelError(
                        f"{self.name}: loss became {loss.item()} at epoch {epoch}",
                        hint="lower the learning rate",
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.item())
                steps += 1
            history["loss"].append(total / max(steps, 1))
            history["seconds"].append(time.perf_counter() - t0)
            if val is None:
                continue
            mrr = evaluate_sessions(self, val, (20,), max_positions=self.val_positions)["mrr@20"]
            history["val_mrr@20"].append(mrr)
            log.info(
                "%s epoch %d: loss %.4f, val mrr@20 %.4f (%.0fs)",
                self.name,
                epoch,
                history["loss"][-1],
                mrr,
                history["seconds"][-1],
            )
            if best is None or mrr > best[0]:
                best, bad = (mrr, epoch, copy.deepcopy(net.state_dict())), 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best is not None:
            net.load_state_dict(best[2])
        net.eval()
        self._cache = None
        return {
            "epochs": len(history["loss"]),
            "best_epoch": None if best is None else best[1],
            "best_val_mrr@20": None if best is None else best[0],
            "history": history,
        }

    def _loss(
        self,
        net: SessionNet,
        batch: PrefixBatch,
        target: np.ndarray,
        user: np.ndarray,
        hour: np.ndarray,
        neg_p: np.ndarray,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Cross-entropy of the target against every song (``negatives=None``) or against
        ``negatives`` songs sampled from ``neg_p`` with the log-Q correction of sampled
        softmax; prefix songs and accidental hits are masked out either way."""
        items = torch.from_numpy(batch.items)
        u, hr = torch.from_numpy(user), torch.from_numpy(hour)
        tgt = torch.from_numpy(target)
        num_songs = net.num_songs
        edges = self._edges(batch, target)
        if self.negatives is None or self.negatives >= num_songs:
            logits = net(items, u, hr)
            for w, m in edges:
                coo = m.tocoo()
                idx = (
                    torch.from_numpy(coo.row.astype(np.int64)),
                    torch.from_numpy(coo.col.astype(np.int64)),
                )
                logits = logits.index_put(idx, w * torch.from_numpy(coo.data), accumulate=True)
            seen = torch.zeros_like(logits, dtype=torch.bool)
            seen[torch.from_numpy(batch.seen_rows), torch.from_numpy(batch.seen_cols)] = True
            return F.cross_entropy(logits.masked_fill(seen, float("-inf")), tgt)
        neg = rng.choice(num_songs, size=self.negatives, p=neg_p)
        prefix = batch.items[batch.items >= 0]
        needed = np.unique(np.concatenate([prefix, target, neg]))
        h, succ = net.songs(needed)
        local = np.where(batch.items >= 0, np.searchsorted(needed, np.maximum(batch.items, 0)), -1)
        s = F.normalize(net.session(torch.from_numpy(local), u, hr, h, succ), dim=-1)
        log_q = torch.from_numpy(np.log(self.negatives * neg_p).astype(np.float32))
        hn = F.normalize(h, dim=-1)
        t_loc = torch.from_numpy(np.searchsorted(needed, target))
        n_loc = torch.from_numpy(np.searchsorted(needed, neg))
        neg_t = torch.from_numpy(neg)
        pos_logit = self.scale * (s * hn[t_loc]).sum(-1) - log_q[tgt]
        neg_logit = self.scale * s @ hn[n_loc].T - log_q[neg_t]
        b = np.arange(len(target))
        for w, m in edges:
            pos_logit = pos_logit + w * torch.from_numpy(np.asarray(m[b, target]).ravel())
            neg_logit = neg_logit + w * torch.from_numpy(m[:, neg].toarray())
        hidden = np.zeros((len(target), num_songs), dtype=bool)
        hidden[batch.seen_rows, batch.seen_cols] = True
        hidden[b, target] = True  # accidental hits
        neg_logit = neg_logit.masked_fill(torch.from_numpy(hidden[:, neg]), float("-inf"))
        logits = torch.cat([pos_logit[:, None], neg_logit], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long))

    def _edges(
        self, batch: PrefixBatch, target: np.ndarray | None = None
    ) -> list[tuple[torch.Tensor, sp.csr_matrix]]:
        """(weight, transition rows) from the last two prefix songs; leave-one-out for the
        last song's own transition when ``target`` is given (training)."""
        if not self.edge_term or self.net is None:
            return []
        return [
            (self.net.edge[0], edge_rows(self.counts_, batch.items, -1, leave_out=target)),
            (self.net.edge[1], edge_rows(self.counts_, batch.items, -2)),
        ]

    def _songs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cached song tables for inference (built once after training or loading)."""
        cache = self._cache
        if cache is None:
            assert self.net is not None
            with torch.no_grad():
                h, succ = self.net.songs()
                cache = (h, succ, F.normalize(h, dim=-1))
            self._cache = cache
        return cache

    @torch.no_grad()
    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S] (cosine logits)."""
        if self.net is None:
            raise _not_fitted(self)
        was_training = self.net.training
        self.net.eval()
        h, succ, hn = self._songs()
        s = self.net.session(
            torch.from_numpy(batch.items[:, -self.max_len :]),
            torch.from_numpy(batch.user),
            torch.from_numpy(batch.hour),
            h,
            succ,
        )
        out = (self.scale * F.normalize(s, dim=-1) @ hn.T).numpy()
        for w, m in self._edges(batch):
            coo = m.tocoo()
            out[coo.row, coo.col] += float(w) * coo.data
        if was_training:
            self.net.train()
        return out

    def num_parameters(self) -> int:
        return 0 if self.net is None else sum(p.numel() for p in self.net.parameters())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.net is not None:
            self.net.eval()
            self._songs()  # build the inference cache before any concurrent reader
