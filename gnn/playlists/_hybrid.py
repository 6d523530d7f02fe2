""":class:`PlaylistHybrid`: the playlist GNN blended with EASE^R, the weight chosen on validation.

EASE^R is exact item-to-item regression on the training playlists; the GNN
(:class:`gnn.playlists._train.PlaylistGNN`) adds what co-occurrence cannot see: artists,
genres, name words, songs in few playlists. The hybrid ranks by

    (1 - w) * z(EASE^R scores) + w * z(GNN scores),

``z`` standardising each playlist's scores over the catalogue (mean 0, deviation 1, so the two
scales meet), with ``w`` picked on validation R-precision from a grid that includes both ends
(``w = 0``: EASE^R alone, ``w = 1``: the GNN alone). Both parts are fitted on the training
playlists only; the GNN keeps its own early stopping.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gnn.playlists._base import PlaylistModel
from gnn.playlists._baselines import EASEContinuer
from gnn.playlists._data import Cases
from gnn.playlists._evaluate import evaluate_cases
from gnn.playlists._train import PlaylistGNN

log = logging.getLogger(__name__)


def _standardise(s: np.ndarray) -> np.ndarray:
    """Each row to mean 0 and standard deviation 1 (constant rows become 0)."""
    sd = s.std(axis=1, keepdims=True)
    return (s - s.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def _ease_key(m: EASEContinuer) -> tuple[Any, ...]:
    return (tuple(m.l2_grid), m.min_count, m.max_val_cases)


class PlaylistHybrid(PlaylistModel):
    """``(1 - w) * z(ease) + w * z(playlistgnn)``, ``w`` tuned on validation R-precision.

    Args:
        weights: candidates for ``w`` (default ``(0, .2, .4, .5, .6, .7, .8, .9, 1)``;
            without validation cases 0.5).
        max_val_cases: validation cases scored per candidate (default 1500).
        ease: arguments of :class:`EASEContinuer` (default none).
        **gnn: arguments of :class:`PlaylistGNN` (``epochs``, ``dim``...).
    """

    name = "playlisthybrid"
    W_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

    def __init__(
        self,
        weights: Sequence[float] = W_GRID,
        max_val_cases: int = 1500,
        ease: Mapping[str, Any] | None = None,
        **gnn: Any,
    ):
        super().__init__()
        if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
            raise ValueError(f"weights must be in [0, 1] (got {weights!r})")
        self.weights = tuple(float(w) for w in weights)
        self.max_val_cases = max_val_cases
        self.ease = EASEContinuer(**dict(ease or {}))
        self.gnn = PlaylistGNN(**gnn)
        self.w = 0.5
        self._adopted: list[str] = []

    def num_parameters(self) -> int:
        return self.ease.num_parameters() + self.gnn.num_parameters()

    def adopt(self, fitted: Mapping[str, PlaylistModel]) -> list[str]:
        """Take an ``ease`` and a ``playlistgnn`` fitted in the same comparison (same
        configuration) instead of fitting them again; returns the names taken."""
        taken: list[str] = []
        other = fitted.get("ease")
        if isinstance(other, EASEContinuer) and _ease_key(other) == _ease_key(self.ease):
            self.ease, taken = other, [*taken, "ease"]
        other = fitted.get("playlistgnn")
        if isinstance(other, PlaylistGNN) and other.config == self.gnn.config:
            self.gnn, taken = other, [*taken, "playlistgnn"]
        self._adopted = taken
        return taken

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        info: dict[str, Any] = {}
        for name, part in (("ease", self.ease), ("playlistgnn", self.gnn)):
            if name not in self._adopted:
                sub = part.fit(corpus, train, val=val, progress=progress)
                info[name] = {k: v for k, v in sub.items() if k != "curve"}
        tried: dict[str, float] = {}
        if isinstance(val, Cases) and len(val) and len(self.weights) > 1:
            if len(val) > self.max_val_cases:
                rng = np.random.default_rng(0)
                val = val.take(np.sort(rng.choice(len(val), self.max_val_cases, replace=False)))
            best: tuple[float, float] | None = None
            for w in self.weights:
                self.w = w
                res = evaluate_cases(self.rank, val, corpus.song_artist)
                score = float(res["overall"]["r_precision"])  # type: ignore[index]
                tried[str(w)] = score
                log.info("%s w=%.2f: val R-precision %.4f", self.name, w, score)
                if best is None or score > best[0]:
                    best = (score, w)
            assert best is not None
            self.w = best[1]
        info.update(w=self.w, val=tried, reused=list(self._adopted))
        self._adopted = []
        return info

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        return self.ease.knows(seeds, name) or self.gnn.knows(seeds, name)

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        out = np.zeros((len(seeds), self.num_songs), dtype=np.float64)
        if self.w < 1.0:
            out += (1.0 - self.w) * _standardise(self.ease.scores(seeds, names))
        if self.w > 0.0:
            out += self.w * _standardise(self.gnn.scores(seeds, names))
        return out + self._tiebreak()

    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for prefix, part in (("ease__", self.ease), ("gnn__", self.gnn)):
            arrays, _ = part.state()
            out.update({prefix + k: v for k, v in arrays.items()})
        return out

    def _state_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"w": self.w, "weights": list(self.weights)}
        for key, part in (("ease", self.ease), ("gnn", self.gnn)):
            _, sub = part.state()
            sub.pop("song_ids", None)
            meta[key] = sub
        return meta

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.w = float(meta["w"])
        self.weights = tuple(float(w) for w in meta.get("weights", (self.w,)))
        self._adopted = []
        for prefix, key, cls in (("ease__", "ease", EASEContinuer), ("gnn__", "gnn", PlaylistGNN)):
            sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            part = cls.from_state(sub, {**meta[key], "song_ids": meta["song_ids"]})
            setattr(self, key, part)
