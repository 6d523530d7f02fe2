"""``playlistgnn``: :class:`gnn.playlists._models.PlaylistGNNModule` trained with a full
softmax over songs; its final song and token embeddings are exported as numpy arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gnn.playlists._base import PlaylistModel
from gnn.playlists._data import BUCKETS, name_tokens, normalize_name
from gnn.playlists._evaluate import evaluate_cases
from gnn.playlists._models import PlaylistGNNModule
from spotify_engine.errors import ModelError

log = logging.getLogger(__name__)


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
    """The playlist GNN (see ``gnn.playlists._models``), trained with a full softmax over songs,
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
