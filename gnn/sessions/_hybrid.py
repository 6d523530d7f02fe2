""":class:`SessionHybrid`: the session GNN as a learned correction of a first-order Markov chain.

Markov transition counts rank the few observed successors of the last song sharply and know
nothing else; the session GNN (:class:`gnn.sessions._train.SessionGNN`) spreads probability
over the whole catalogue from the prefix, the user and the hour. The hybrid is their mixture

    p(b | prefix) = (1 - w) * softmax(GNN logits)_b + w * P_markov(b | last song),

a proper distribution, with the one weight ``w`` chosen on validation MRR@20 from a grid that
includes ``w = 0`` (the GNN alone). Both parts are fitted on the training sessions only; the
GNN keeps its own early stopping on validation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from gnn.sessions._base import SessionModel, _not_fitted
from gnn.sessions._baselines import Markov
from gnn.sessions._data import PrefixBatch, Sessions
from gnn.sessions._evaluate import evaluate_sessions
from gnn.sessions._train import SessionGNN

log = logging.getLogger(__name__)


class SessionHybrid(SessionModel):
    """``(1 - w) * softmax(SessionGNN) + w * Markov``, ``w`` tuned on validation MRR@20.

    Args:
        weights: candidates for ``w`` (default ``(0, .2, .4, .5, .6, .7, .8, .9, .95)``;
            without ``val`` the largest is used).
        tune_positions: validation positions per candidate (default 20,000).
        **gnn: the :class:`SessionGNN` arguments (``dim``, ``epochs``, ``threads``...).

    Shapes:
        score: B prefixes -> float32 [B, S] (a probability per song)
    """

    name = "sessionhybrid"
    W_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

    def __init__(
        self,
        weights: tuple[float, ...] = W_GRID,
        tune_positions: int = 20_000,
        **gnn: Any,
    ) -> None:
        if not weights or any(not 0.0 <= w < 1.0 for w in weights):
            raise ValueError(f"weights must be in [0, 1) (got {weights!r})")
        self.weights = tuple(float(w) for w in weights)
        self.tune_positions = tune_positions
        self.gnn = SessionGNN(**gnn)
        self.markov = Markov()
        self.w = max(self.weights)
        self.max_len = self.gnn.max_len
        self._adopted: dict[str, float] = {}

    def config(self) -> dict[str, Any]:
        return {"w": self.w, "weights": list(self.weights), "gnn": self.gnn.config()}

    def adopt(self, fitted: Mapping[str, SessionModel], seconds: Mapping[str, float]) -> list[str]:
        """Take already fitted parts from the same comparison instead of training them
        again: a ``sessiongnn`` with the same configuration, a ``markov``. Returns the names
        taken; their training seconds count towards this model's."""
        taken: list[str] = []
        other = fitted.get("sessiongnn")
        same = isinstance(other, SessionGNN) and other.config() == self.gnn.config()
        if same and isinstance(other, SessionGNN) and other.net is not None:
            self.gnn = other
            taken.append("sessiongnn")
        other = fitted.get("markov")
        if isinstance(other, Markov) and hasattr(other, "transitions_"):
            self.markov = other
            taken.append("markov")
        self._adopted = {name: float(seconds.get(name, 0.0)) for name in taken}
        return taken

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        info: dict[str, Any] = {}
        t0 = time.perf_counter()
        if "sessiongnn" not in self._adopted:
            gnn_info = self.gnn.fit(train, val=val)
            info["gnn"] = {k: v for k, v in gnn_info.items() if k != "history"}
            info["history"] = gnn_info.get("history")
        if "markov" not in self._adopted:
            self.markov.fit(train)
        self.max_len = self.gnn.max_len
        tried: dict[str, float] = {}
        if val is not None and len(self.weights) > 1:
            best = (-np.inf, self.w)
            for w in self.weights:
                self.w = w
                mrr = evaluate_sessions(
                    self, val, (20,), max_positions=self.tune_positions, batch_size=512
                )["mrr@20"]
                tried[str(w)] = mrr
                log.info("%s w=%.2f: val mrr@20=%.4f", self.name, w, mrr)
                if mrr > best[0]:
                    best = (mrr, w)
            self.w = best[1]
        info.update(
            w=self.w,
            val=tried,
            reused=sorted(self._adopted),
            reused_train_seconds=sum(self._adopted.values()),
            own_seconds=time.perf_counter() - t0,
        )
        self._adopted = {}
        return info

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if self.gnn.net is None or not hasattr(self.markov, "transitions_"):
            raise _not_fitted(self)
        logits = self.gnn.score(batch).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        if self.w > 0:
            p = (1.0 - self.w) * p + self.w * self.markov.probabilities(batch)
        return p.astype(np.float32)

    def num_parameters(self) -> int:
        return self.gnn.num_parameters() + self.markov.num_parameters()
