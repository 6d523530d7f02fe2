"""Playlist continuation models, their training and evaluation, and the run folder format.

Given a playlist's first K tracks and its name, rank the tracks that complete it (see
``gnn._playlist_eval`` for the split, cases and the challenge metrics). Five models, all behind
one interface (:class:`PlaylistModel`) and scored by one harness:

* ``popularity``: songs in the most training playlists.
* ``namepop``: songs of training playlists with the same normalised name (weight 2) and of
  those sharing a name word (averaged over the words), popularity last. Seeds are ignored:
  the K = 0 baseline.
* ``itemknn``: item co-occurrence kNN: cosine similarity of songs over training playlists,
  summed over the seeds; with no known seed it falls back to ``namepop``.
* ``hybridknn``: ``itemknn`` plus ``namepop``, for a baseline that uses seeds and name as the
  GNN does.
* ``playlistgnn``: :class:`gnn._playlist_gnn.PlaylistGNNModule`, inductive over seeds and name.

A fitted model is plain numpy at prediction time (the GNN's final song and token embeddings
are exported after training), so loading needs neither torch modules nor Neo4j, and
:meth:`PlaylistModel.continue_playlist` only reads shared arrays: it is safe to call from many
threads. :func:`save_playlist_run` records a model in the registry (task ``playlist``) with its
arrays in ``playlist.npz`` and its vocabulary in ``playlist.json``;
:func:`load_playlist_continuer` reads it back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
import torch

from gnn._playlist_eval import (
    BUCKETS,
    LIST_LENGTH,
    Cases,
    PlaylistCorpus,
    PlaylistSplit,
    evaluate_cases,
    flatten_metrics,
    make_cases,
    name_tokens,
    normalize_name,
    split_playlists,
)
from gnn._playlist_gnn import PlaylistGNNModule
from gnn._registry import (
    RunInfo,
    get_active,
    load_run,
    make_by_name,
    save_run,
    set_active,
)
from gnn._snapshot import GraphSnapshot
from spotify_engine.errors import ModelError

log = logging.getLogger(__name__)

__all__ = [
    "PLAYLIST_MODELS",
    "HybridKNN",
    "ItemKNNContinuer",
    "NamePopularity",
    "PlaylistContinuer",
    "PlaylistGNN",
    "PlaylistModel",
    "PlaylistPopularity",
    "PlaylistResult",
    "load_playlist_continuer",
    "make_playlist_model",
    "save_playlist_run",
    "train_playlist_models",
]

_ARRAYS = "playlist.npz"
_META = "playlist.json"
_FORMAT = 1


@runtime_checkable
class PlaylistContinuer(Protocol):
    """What the API serves for playlist continuation (see :func:`load_playlist_continuer`)."""

    name: str
    run_id: str | None

    def continue_playlist(
        self, *, song_ids: Sequence[str], name: str | None = None, k: int = 10
    ) -> list[tuple[str, float]]: ...


def _csr(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows.astype(np.int64), cols.astype(np.int64))),
        shape=shape,
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _train_matrix(corpus: PlaylistCorpus, train: np.ndarray) -> sp.csr_matrix:
    """Binary [training playlists, songs] matrix."""
    tracks = [corpus.tracks[p] for p in train.tolist()]
    rows = np.repeat(np.arange(len(tracks)), [len(t) for t in tracks])
    cols = np.concatenate(tracks) if tracks else np.zeros(0, np.int64)
    return _csr((len(tracks), corpus.num_songs), rows, cols)


class PlaylistModel:
    """Base of the continuation models.

    Subclasses implement ``_fit`` (sees training playlists only; ``val`` cases are for early
    stopping), ``scores(seeds, names) -> float64 [B, S]`` (higher is better) and the state
    hooks. Everything else (masking the seeds, ranking, popularity fallback, ids) is here.
    """

    name: ClassVar[str] = "base"

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.song_ids = np.zeros(0, dtype=object)
        self.popularity = np.zeros(0, dtype=np.float64)
        self._index: dict[str, int] = {}

    # -- fitting ------------------------------------------------------------------------------

    def fit(
        self,
        corpus: PlaylistCorpus,
        train: np.ndarray,
        *,
        val: Cases | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Fit on the playlists ``train`` of ``corpus``; returns what training reports."""
        self.song_ids = np.asarray(corpus.song_ids, dtype=object)
        self._index = {str(s): i for i, s in enumerate(self.song_ids)}
        x = _train_matrix(corpus, np.asarray(train, dtype=np.int64))
        self.popularity = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        return self._fit(corpus, np.asarray(train, dtype=np.int64), x, val, progress) or {}

    def _fit(
        self,
        corpus: PlaylistCorpus,
        train: np.ndarray,
        x: sp.csr_matrix,
        val: Cases | None,
        progress: Callable[[str], None] | None,
    ) -> dict[str, Any] | None:
        return None

    @property
    def num_songs(self) -> int:
        return len(self.song_ids)

    def num_parameters(self) -> int:
        return 0

    # -- scoring ------------------------------------------------------------------------------

    def _tiebreak(self) -> np.ndarray:
        """Popularity scaled into [0, 1e-6): orders songs a model scores equally (zeros)."""
        top = self.popularity.max(initial=0.0)
        return self.popularity / (top * 1e6) if top > 0 else np.zeros_like(self.popularity)

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        raise NotImplementedError

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        """Whether the input holds anything this model uses (else: popularity)."""
        return len(seeds) > 0

    def rank(
        self, seeds: Sequence[np.ndarray], names: Sequence[str | None], n: int = LIST_LENGTH
    ) -> np.ndarray:
        """Top ``n`` song indices per case, best first, seeds excluded (``-1`` pads)."""
        return self._top(seeds, names, n)[0]

    def _top(
        self, seeds: Sequence[np.ndarray], names: Sequence[str | None], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        s = np.array(self.scores(seeds, names), dtype=np.float64)
        if s.shape != (len(seeds), self.num_songs):
            raise ModelError(
                f"{self.name}.scores returned shape {s.shape}, want {(len(seeds), self.num_songs)}"
            )
        if np.isnan(s).any():
            raise ModelError(f"{self.name} produced NaN scores")
        pop = self.popularity + self._tiebreak()
        for i, seed in enumerate(seeds):
            if not self.knows(seed, names[i]):
                s[i] = pop
            s[i, np.asarray(seed, dtype=np.int64)] = -np.inf
        n = min(n, self.num_songs)
        if n <= 0:
            return np.zeros((len(seeds), 0), np.int64), np.zeros((len(seeds), 0))
        part = np.argpartition(-s, n - 1, axis=1)[:, :n]
        top_s = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        idx = np.take_along_axis(part, order, axis=1)
        top_s = np.take_along_axis(top_s, order, axis=1)
        idx = np.where(np.isfinite(top_s), idx, -1)
        return idx.astype(np.int64), top_s

    def continue_playlist(
        self, *, song_ids: Sequence[str], name: str | None = None, k: int = 10
    ) -> list[tuple[str, float]]:
        """Up to ``k`` ``(song_id, score)`` to add, best first, never an input song.

        Unknown ids are ignored; with no known song (and, for name-aware models, no known
        name word) the ranking is by popularity.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int (got {k!r})")
        seeds = np.array(
            sorted({self._index[s] for s in song_ids if s in self._index}), dtype=np.int64
        )
        idx, sc = self._top([seeds], [name], k)
        return [
            (str(self.song_ids[i]), float(v)) for i, v in zip(idx[0], sc[0], strict=True) if i >= 0
        ]

    # -- state --------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Numeric arrays (saved without pickle) and JSON metadata that rebuild the model."""
        arrays = {"popularity": self.popularity}
        arrays.update(self._state_arrays())
        return arrays, {"song_ids": [str(s) for s in self.song_ids], **self._state_meta()}

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _state_meta(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> PlaylistModel:
        model = cls.__new__(cls)
        PlaylistModel.__init__(model)
        model.song_ids = np.empty(len(meta["song_ids"]), dtype=object)
        model.song_ids[:] = meta["song_ids"]
        model._index = {s: i for i, s in enumerate(meta["song_ids"])}
        model.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        model._load(arrays, meta)
        return model

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(songs={self.num_songs})"


class PlaylistPopularity(PlaylistModel):
    """Songs in the most training playlists, whatever the input."""

    name = "popularity"

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        return np.tile(self.popularity + self._tiebreak(), (len(seeds), 1))

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        return True


class NamePopularity(PlaylistModel):
    """Songs of training playlists named like this one.

    ``score = 2 * share_exact + mean_word share_word``, where ``share_exact`` is the share of
    training playlists with the same normalised name that hold the song, and ``share_word``
    the same for playlists whose name has that word; words seen in fewer than ``min_count``
    training names are ignored.
    """

    name = "namepop"

    def __init__(self, min_count: int = 1):
        super().__init__()
        self.min_count = min_count
        self.names: dict[str, int] = {}
        self.words: dict[str, int] = {}
        self.name_songs = sp.csr_matrix((0, 0), dtype=np.float32)
        self.word_songs = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        norm = [normalize_name(corpus.names[p]) for p in train.tolist()]
        names = sorted({n for n in norm if n})
        self.names = {n: i for i, n in enumerate(names)}
        rows = np.array([self.names.get(n, -1) for n in norm], dtype=np.int64)
        self.name_songs = self._shares(rows, x, len(names))
        counts: dict[str, int] = {}
        for n in norm:
            for w in set(n.split()):
                counts[w] = counts.get(w, 0) + 1
        words = sorted(w for w, c in counts.items() if c >= self.min_count)
        self.words = {w: i for i, w in enumerate(words)}
        pl_rows, word_rows = [], []
        for i, n in enumerate(norm):
            for w in set(n.split()):
                if w in self.words:
                    pl_rows.append(i)
                    word_rows.append(self.words[w])
        member = _csr((len(words), len(norm)), np.array(word_rows), np.array(pl_rows))
        self.word_songs = self._normalise(member @ x, np.asarray(member.sum(axis=1)).ravel())
        return {"names": len(names), "words": len(words)}

    @staticmethod
    def _normalise(m: sp.csr_matrix, counts: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(counts, 1.0)) @ m, dtype=np.float32)

    def _shares(self, rows: np.ndarray, x: sp.csr_matrix, n: int) -> sp.csr_matrix:
        keep = rows >= 0
        member = _csr((n, x.shape[0]), rows[keep], np.flatnonzero(keep))
        return self._normalise(member @ x, np.asarray(member.sum(axis=1)).ravel())

    def _name_rows(self, name: str | None) -> tuple[int, list[int]]:
        norm = normalize_name(name)
        return self.names.get(norm, -1), [
            self.words[w] for w in name_tokens(norm) if w in self.words
        ]

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        exact, words = self._name_rows(name)
        return exact >= 0 or bool(words)

    def name_scores(self, name: str | None) -> np.ndarray:
        exact, words = self._name_rows(name)
        s = np.zeros(self.num_songs, dtype=np.float64)
        if exact >= 0:
            s += 2.0 * self.name_songs[exact].toarray().ravel()
        if words:
            s += np.asarray(self.word_songs[words].mean(axis=0)).ravel()
        return s + self._tiebreak()

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        return np.stack([self.name_scores(n) for n in names]) if names else np.zeros((0, 0))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for key, m in (("name_songs", self.name_songs), ("word_songs", self.word_songs)):
            out[f"{key}_data"], out[f"{key}_indices"] = m.data, m.indices
            out[f"{key}_indptr"] = m.indptr
        return out

    def _state_meta(self) -> dict[str, Any]:
        return {
            "names": sorted(self.names, key=self.names.get),
            "words": sorted(self.words, key=self.words.get),
            "min_count": self.min_count,
        }  # type: ignore[arg-type]

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.min_count = int(meta.get("min_count", 1))
        self.names = {n: i for i, n in enumerate(meta["names"])}
        self.words = {w: i for i, w in enumerate(meta["words"])}
        for key, n in (("name_songs", len(self.names)), ("word_songs", len(self.words))):
            m = sp.csr_matrix(
                (arrays[f"{key}_data"], arrays[f"{key}_indices"], arrays[f"{key}_indptr"]),
                shape=(n, self.num_songs),
            )
            setattr(self, key, m)


class ItemKNNContinuer(NamePopularity):
    """Item co-occurrence kNN: ``score(j) = sum_{i in seeds} c_ij / sqrt(n_i n_j)``.

    ``c_ij`` counts training playlists holding both songs, ``n_i`` those holding song i. The
    sum is computed through the playlist-song matrix at query time (exact, no neighbour
    truncation). With no known seed it ranks like ``namepop``. With ``name_weight`` > 0 (the
    ``hybridknn`` model) the kNN scores and the ``namepop`` scores, each scaled to a maximum
    of 1, are added with that weight on the name: the baseline that, like the GNN, uses both.
    """

    name = "itemknn"

    def __init__(self, min_count: int = 1, name_weight: float = 0.0):
        super().__init__(min_count)
        self.name_weight = float(name_weight)
        self.x = sp.csc_matrix((0, 0), dtype=np.float32)
        self.xt = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        info = super()._fit(corpus, train, x, val, progress)
        self._set_matrix(sp.csc_matrix(x, dtype=np.float32))
        return info

    def _set_matrix(self, x: sp.csc_matrix) -> None:
        self.x = x
        self.xt = sp.csr_matrix(x.T)
        self._inv_sqrt = 1.0 / np.sqrt(np.maximum(self.popularity, 1.0))

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        return bool(self.popularity[seeds].sum() > 0) or super().knows(seeds, name)

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        out = np.zeros((len(seeds), self.num_songs), dtype=np.float64)
        tb = self._tiebreak()
        for i, seed in enumerate(seeds):
            seed = np.asarray(seed, dtype=np.int64)
            if len(seed) and self.popularity[seed].sum() > 0:
                w = self.x[:, seed] @ self._inv_sqrt[seed]  # weight per training playlist
                out[i] = (self.xt @ w) * self._inv_sqrt
                if self.name_weight and super().knows(seed, names[i]):
                    name = self.name_scores(names[i])
                    out[i] = out[i] / max(out[i].max(), 1e-12) + (
                        self.name_weight * name / max(name.max(), 1e-12)
                    )
                out[i] += tb
            else:
                out[i] = self.name_scores(names[i])
        return out

    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = super()._state_arrays()
        out.update(x_indices=self.x.indices, x_indptr=self.x.indptr)
        return out

    def _state_meta(self) -> dict[str, Any]:
        return {
            **super()._state_meta(),
            "num_train_playlists": int(self.x.shape[0]),
            "name_weight": self.name_weight,
        }

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._load(arrays, meta)
        self.name_weight = float(meta.get("name_weight", 0.0))
        ind = arrays["x_indices"]
        x = sp.csc_matrix(
            (np.ones(len(ind), np.float32), ind, arrays["x_indptr"]),
            shape=(int(meta["num_train_playlists"]), self.num_songs),
        )
        self._set_matrix(x)


@dataclass
class GNNPlaylistConfig:
    """Hyper-parameters of :class:`PlaylistGNN`.

    With these defaults, 4,850 training playlists over 20,000 songs took 12 epochs (early
    stop) in 6 minutes on 2 CPU cores shared with other jobs (about 25 s per epoch).
    ``max_val_cases`` caps the validation cases scored for early stopping.
    """

    dim: int = 32
    layers: int = 2
    epochs: int = 20
    batch_size: int = 512
    lr: float = 0.02
    weight_decay: float = 0.0
    patience: int = 2
    eval_every: int = 2
    max_val_cases: int = 1500
    min_word_count: int = 2
    seed: int = 0


class PlaylistGNN(PlaylistModel):
    """The playlist GNN (see ``gnn._playlist_gnn``), trained with a full softmax over songs,
    early-stopped on validation R-precision."""

    name = "playlistgnn"

    def __init__(self, **overrides: Any):
        super().__init__()
        self.config = GNNPlaylistConfig(**overrides)
        self.words: dict[str, int] = {}
        self.z = np.zeros((0, self.config.dim), np.float32)
        self.token = np.zeros((0, self.config.dim), np.float32)
        self.bias = np.zeros(0, np.float32)
        self.module: PlaylistGNNModule | None = None

    def num_parameters(self) -> int:
        if self.module is not None:
            return sum(p.numel() for p in self.module.parameters())
        return int(self.z.size + self.token.size + self.bias.size)

    def _tokens(self, name: str | None) -> np.ndarray:
        norm = normalize_name(name)
        toks = [f"={norm}"] if norm else []
        toks += name_tokens(norm)
        return np.array([self.words[t] for t in toks if t in self.words], dtype=np.int64)

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        counts: dict[str, int] = {}
        for p in train.tolist():
            norm = normalize_name(corpus.names[p])
            for t in ([f"={norm}"] if norm else []) + name_tokens(norm):
                counts[t] = counts.get(t, 0) + 1
        self.words = {
            t: i
            for i, t in enumerate(sorted(t for t, c in counts.items() if c >= cfg.min_word_count))
        }
        module = PlaylistGNNModule(
            corpus.num_songs,
            corpus.num_artists,
            corpus.num_genres,
            len(self.words),
            corpus.song_artist_edges,
            corpus.song_genre_edges,
            corpus.song_genre_weight,
            dim=cfg.dim,
            layers=cfg.layers,
        )
        with torch.no_grad():
            module.bias.copy_(torch.as_tensor(np.log1p(self.popularity), dtype=torch.float32))
        self.module = module
        tracks = [corpus.tracks[p] for p in train.tolist()]
        tokens = [self._tokens(corpus.names[p]) for p in train.tolist()]
        xc = x.tocoo()
        ps_pl = torch.as_tensor(xc.row, dtype=torch.long)
        ps_song = torch.as_tensor(xc.col, dtype=torch.long)
        n_pl = len(tracks)
        opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if val is not None and len(val) > cfg.max_val_cases:
            val = val.take(np.sort(rng.choice(len(val), cfg.max_val_cases, replace=False)))
        best, best_epoch, best_state, bad = -1.0, 0, None, 0
        curve: list[dict[str, float]] = []
        for epoch in range(1, cfg.epochs + 1):
            module.train()
            perm = rng.permutation(n_pl)
            total, steps = 0.0, 0
            for start in range(0, n_pl, cfg.batch_size):
                batch = perm[start : start + cfg.batch_size]
                loss = self._step(module, batch, tracks, tokens, ps_pl, ps_song, n_pl, rng)
                if loss is None:
                    continue
                opt.zero_grad()
                loss.backward()
                opt.step()
                value = float(loss.detach())
                if not np.isfinite(value):
                    raise ModelError(
                        f"playlistgnn training diverged (loss {value} at epoch {epoch})"
                    )
                total, steps = total + value, steps + 1
            row = {"epoch": epoch, "loss": total / max(steps, 1)}
            if (
                val is not None
                and len(val)
                and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs)
            ):
                self._export(module, ps_pl, ps_song, n_pl)
                score = float(
                    evaluate_cases(self.rank, val, corpus.song_artist)["overall"]["r_precision"]  # type: ignore[index]
                )
                row["val_r_precision"] = score
                if score > best:
                    best, best_epoch, bad = score, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    bad += 1
            curve.append(row)
            if progress:
                progress(
                    f"epoch {epoch}: loss {row['loss']:.3f}"
                    + (
                        f", val R-precision {row['val_r_precision']:.4f}"
                        if "val_r_precision" in row
                        else ""
                    )
                )
            if bad >= cfg.patience:
                break
        if best_state is not None:
            module.load_state_dict(best_state)
        self._export(module, ps_pl, ps_song, n_pl)
        return {
            "epochs": len(curve),
            "best_epoch": best_epoch or len(curve),
            "best_val_r_precision": best if best >= 0 else None,
            "curve": curve,
            "config": cfg.__dict__,
        }

    def _step(self, module, batch, tracks, tokens, ps_pl, ps_song, n_pl, rng):  # type: ignore[no-untyped-def]
        seeds, toks, rows, cols = [], [], [], []
        for p in batch.tolist():
            t = tracks[p]
            ks = [k for k in BUCKETS if len(t) > k]
            if not ks:
                continue
            k = int(rng.choice(ks))
            seeds.append(t[:k])
            toks.append(tokens[p])
            rows.append(np.full(len(t) - k, len(seeds) - 1))
            cols.append(t[k:])
        if not seeds:
            return None
        keep = torch.as_tensor(~np.isin(ps_pl.numpy(), batch))
        z = module(ps_song[keep], ps_pl[keep], n_pl)
        q = module.query(z, seeds, toks)
        logits = q @ z.T + module.bias
        b = len(seeds)
        with torch.no_grad():
            mask = torch.zeros(b, self.num_songs)
            seed_rows = np.repeat(np.arange(b), [len(s) for s in seeds])
            if len(seed_rows):
                mask[seed_rows, np.concatenate(seeds)] = -1e9  # finite: 0 * mask stays 0
            # each playlist weighs the same, whatever its length
            target = torch.zeros(b, self.num_songs)
            r, c = np.concatenate(rows), np.concatenate(cols)
            target[r, c] = torch.as_tensor(
                1.0 / np.bincount(r, minlength=b)[r], dtype=torch.float32
            )
        logp = torch.log_softmax(logits + mask, dim=1)
        return -(target * logp).sum() / b

    @torch.no_grad()
    def _export(self, module, ps_pl, ps_song, n_pl) -> None:  # type: ignore[no-untyped-def]
        module.eval()
        self.z = module(ps_song, ps_pl, n_pl).numpy().astype(np.float32)
        self.token = module.token.weight.detach().numpy().astype(np.float32).copy()
        self.bias = module.bias.detach().numpy().astype(np.float32).copy()

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        return len(seeds) > 0 or len(self._tokens(name)) > 0

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        q = np.zeros((len(seeds), self.z.shape[1]), dtype=np.float32)
        for i, (seed, name) in enumerate(zip(seeds, names, strict=True)):
            if len(seed):
                q[i] += self.z[np.asarray(seed, dtype=np.int64)].mean(axis=0)
            toks = self._tokens(name)
            if len(toks):
                q[i] += self.token[toks].mean(axis=0)
        return (q @ self.z.T + self.bias).astype(np.float64)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"z": self.z, "token": self.token, "bias": self.bias}

    def _state_meta(self) -> dict[str, Any]:
        return {"words": sorted(self.words, key=self.words.get), "config": self.config.__dict__}  # type: ignore[arg-type]

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.config = GNNPlaylistConfig(**meta.get("config", {}))
        self.words = {w: i for i, w in enumerate(meta["words"])}
        self.z, self.token, self.bias = arrays["z"], arrays["token"], arrays["bias"]
        self.module = None


class HybridKNN(ItemKNNContinuer):
    """``itemknn`` plus ``namepop`` (see :class:`ItemKNNContinuer`, ``name_weight`` 0.5)."""

    name = "hybridknn"

    def __init__(self, min_count: int = 1, name_weight: float = 0.5):
        super().__init__(min_count, name_weight)


PLAYLIST_MODELS: dict[str, type[PlaylistModel]] = {
    "popularity": PlaylistPopularity,
    "namepop": NamePopularity,
    "itemknn": ItemKNNContinuer,
    "hybridknn": HybridKNN,
    "playlistgnn": PlaylistGNN,
}


def make_playlist_model(name: str, **overrides: Any) -> PlaylistModel:
    """A fresh continuation model by name (:data:`PLAYLIST_MODELS`)."""
    return make_by_name(PLAYLIST_MODELS, name, "playlist model", **overrides)


# --------------------------------------------------------------------------- registry


def save_playlist_run(
    model: PlaylistModel,
    root: str | os.PathLike[str],
    *,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    snapshot_id: str | None = None,
    train_seconds: float | None = None,
    fit_info: dict[str, Any] | None = None,
) -> RunInfo:
    """Record a fitted model as a run of task ``playlist``, with its state beside it."""
    info = save_run(
        model,
        root=root,
        config=config,
        metrics=metrics,
        snapshot_id=snapshot_id,
        train_seconds=train_seconds,
        fit_info=fit_info,
        checkpoint=False,
        task="playlist",
    )
    arrays, meta = model.state()
    meta = {"format": _FORMAT, "model": model.name, **meta}
    tmp = info.path / (_ARRAYS + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    tmp.replace(info.path / _ARRAYS)
    tmp = info.path / (_META + ".tmp")
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    tmp.replace(info.path / _META)
    model.run_id = info.run_id
    return info


def load_playlist_continuer(runs_root: Path, run_id: str | None = None) -> PlaylistModel:
    """The model of a playlist run (default: the active run of task ``playlist``).

    Raises:
        ModelError: no active playlist run, an unknown run, a run of another task, or a run
            folder without the saved model.
    """
    root = Path(runs_root)
    rid = run_id or get_active(root, task="playlist")
    if rid is None:
        raise ModelError(
            f"no active playlist model in {root}",
            hint="train one: spotify-engine train --task playlist",
        )
    try:
        info = load_run(root, rid)
    except (LookupError, ValueError) as exc:
        raise ModelError(str(exc), hint="see spotify-engine models list") from None
    if info.task != "playlist":
        raise ModelError(
            f"run {rid} serves the {info.task} task, not playlist",
            hint="pick a run trained with --task playlist",
        )
    arrays_path, meta_path = info.path / _ARRAYS, info.path / _META
    if not arrays_path.is_file() or not meta_path.is_file():
        raise ModelError(
            f"run {rid} has no saved playlist model",
            hint="train again: spotify-engine train --task playlist",
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != _FORMAT or meta.get("model") not in PLAYLIST_MODELS:
        raise ModelError(f"run {rid}: unsupported playlist model {meta.get('model')!r}")
    with np.load(arrays_path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    model = PLAYLIST_MODELS[meta["model"]].from_state(arrays, meta)
    model.run_id = rid
    return model


# --------------------------------------------------------------------------- pipeline


@dataclass
class PlaylistResult:
    """One model fitted and scored: validation and test results per bucket, and its run."""

    model: PlaylistModel
    val: dict[str, Any]
    test: dict[str, Any]
    seconds: float
    fit_info: dict[str, Any] = field(default_factory=dict)
    run: RunInfo | None = None


def train_playlist_models(
    snap: GraphSnapshot,
    models: Sequence[str] = tuple(PLAYLIST_MODELS),
    *,
    runs_root: str | os.PathLike[str] | None = None,
    activate: str | None = "best",
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, PlaylistResult], PlaylistSplit]:
    """Split the snapshot's playlists, fit each model, score it on validation and test.

    Args:
        models: names from :data:`PLAYLIST_MODELS`.
        runs_root: record each model as a run of task ``playlist`` there (None: no runs).
        activate: ``"best"`` activates the model with the best validation R-precision, a
            model name activates that one, None activates nothing.
        overrides: per-model constructor arguments, e.g. ``{"playlistgnn": {"epochs": 5}}``.
        progress: called with a line of text as work proceeds.

    Raises:
        ModelError: the snapshot has fewer than three non-empty playlists.
    """
    say = progress or (lambda _m: None)
    corpus = PlaylistCorpus.from_snapshot(snap)
    try:
        split = split_playlists(corpus, val_frac=val_frac, test_frac=test_frac, seed=seed)
    except ValueError as exc:
        raise ModelError(
            f"cannot evaluate playlist continuation: {exc}",
            hint="load playlists first, e.g. spotify-engine ingest mpd <folder>",
        ) from None
    val_cases = make_cases(corpus, split.val)
    test_cases = make_cases(corpus, split.test)
    snapshot_id = snap.snapshot_id()
    config = {
        "val_frac": val_frac,
        "test_frac": test_frac,
        "seed": seed,
        "buckets": list(BUCKETS),
        "list_length": LIST_LENGTH,
        "train_playlists": len(split.train),
        "val_playlists": len(split.val),
        "test_playlists": len(split.test),
    }
    results: dict[str, PlaylistResult] = {}
    for name in models:
        model = make_playlist_model(name, **(overrides or {}).get(name, {}))
        say(f"fitting {model.name} ...")
        t0 = time.perf_counter()
        info = model.fit(corpus, split.train, val=val_cases, progress=say)
        seconds = time.perf_counter() - t0
        say(f"evaluating {model.name} ...")
        val = evaluate_cases(model.rank, val_cases, corpus.song_artist)
        test = evaluate_cases(model.rank, test_cases, corpus.song_artist)
        res = PlaylistResult(model, val, test, seconds, info)
        if runs_root is not None:
            metrics = {
                **flatten_metrics(test),
                **flatten_metrics(val, "val_"),
                "val": val,
                "test": test,
            }
            cfg = {**config, "model": model.name, **(overrides or {}).get(name, {})}
            res.run = save_playlist_run(
                model,
                runs_root,
                config=cfg,
                metrics=metrics,
                snapshot_id=snapshot_id,
                train_seconds=seconds,
                fit_info=info,
            )
        results[model.name] = res
    if runs_root is not None and activate is not None and results:
        pick = (
            max(results, key=lambda m: results[m].val["overall"].get("r_precision", -1.0))
            if activate == "best"
            else make_playlist_model(activate).name
        )
        run = results[pick].run if pick in results else None
        if run is None:
            raise ValueError(f"cannot activate {activate!r}: not among the fitted models")
        set_active(runs_root, run.run_id, task="playlist")
        say(f"active playlist model: {pick} ({run.run_id})")
    return results, split
