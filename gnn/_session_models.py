"""Next-song models: three strong simple baselines and a session-aware graph network.

* :class:`SessionPopularity` -- the most played songs of the training sessions.
* :class:`Markov` -- first-order transition counts between consecutive plays of training
  sessions (the statistic the graph keeps as ``FOLLOWED_BY``), backing off to earlier prefix
  songs when the last one has no known successor, popularity breaking ties.
* :class:`SKNN` -- session-kNN (Jannach & Ludewig 2017, the "V-SKNN" variant of Ludewig &
  Jannach 2018): neighbours are the training sessions most similar (cosine) to the prefix
  with recent songs weighted more; a song scores the summed similarity of the neighbours
  that contain it. Known to be hard to beat on next-item tasks.
* :class:`SessionGNN` -- song embeddings (plus their artist's) propagated over the
  training song-transition graph, an SR-GNN style attention readout over the prefix, the
  user's embedding and an hour-of-day embedding; full-softmax cross-entropy over the
  catalogue with normalised embeddings (NISER), early stopping on validation MRR@20.

Every model implements :class:`gnn._session.SessionModel`; the harness, exclusion of input
songs and serving are shared.
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
from torch import nn

from gnn._session import (
    HOURS,
    PrefixBatch,
    SessionModel,
    Sessions,
    evaluate_sessions,
    iter_batches,
    positions,
)
from spotify_engine import errors

log = logging.getLogger(__name__)

__all__ = ["SESSION_MODELS", "SKNN", "Markov", "SessionGNN", "SessionPopularity"]


def _not_fitted(model: SessionModel) -> errors.ModelError:
    return errors.ModelError(f"{model.name}: call fit before score")


class SessionPopularity(SessionModel):
    """Ranks by play count in the training sessions; the same list for every prefix."""

    name = "popularity"

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        return {}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "popularity_"):
            raise _not_fitted(self)
        return np.broadcast_to(self.popularity_, (len(batch), self.num_songs_))


def transition_matrix(train: Sessions) -> sp.csr_matrix:
    """Counts of song a followed by song b within training sessions, [S, S]."""
    a, b = train.transitions()
    s = train.num_songs
    m = sp.coo_matrix((np.ones(len(a), dtype=np.float32), (a, b)), shape=(s, s)).tocsr()
    m.sum_duplicates()
    return m


class Markov(SessionModel):
    """First-order Markov chain over consecutive plays of training sessions.

    The score of song b after prefix ``..., a`` is ``P(b | a) = count(a -> b) / count(a ->)``
    plus ``1e-3 *`` normalised popularity (a tie-break below any observed transition). If
    ``a`` was never followed by anything in training, the last prefix song that was is used.
    """

    name = "markov"

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        counts = transition_matrix(train)
        out = np.asarray(counts.sum(axis=1)).ravel()
        self.out_degree_ = out
        self.transitions_ = sp.diags(1.0 / np.maximum(out, 1.0)).dot(counts).tocsr()
        return {"transitions": int(counts.nnz)}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "transitions_"):
            raise _not_fitted(self)
        items = batch.items
        has_out = (items >= 0) & (self.out_degree_[np.maximum(items, 0)] > 0)
        # Last column with a known successor; rows with none fall back to popularity only.
        col = items.shape[1] - 1 - np.argmax(has_out[:, ::-1], axis=1)
        ok = has_out.any(axis=1)
        src = np.where(ok, items[np.arange(len(items)), col], 0)
        scores = self.transitions_[src].toarray().astype(np.float32)
        scores[~ok] = 0.0
        scores += 1e-3 * self.popularity_[None, :]
        return scores

    def num_parameters(self) -> int:
        return int(self.transitions_.nnz) if hasattr(self, "transitions_") else 0


class SKNN(SessionModel):
    """Session-based kNN with position-decayed prefix weights (V-SKNN).

    Args:
        k: neighbour sessions (default 100; with ``val``, chosen from ``k_grid`` by MRR@20).
        k_grid: candidates for ``k`` tried on validation (default ``(50, 100, 200, 500)``).
        tune_positions: validation positions used for the choice (default 20,000).
    """

    name = "sknn"

    def __init__(
        self,
        k: int = 100,
        k_grid: tuple[int, ...] = (50, 100, 200, 500),
        tune_positions: int = 20_000,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1 (got {k})")
        self.k = k
        self.k_grid = tuple(k_grid)
        self.tune_positions = tune_positions

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        rows = np.repeat(np.arange(train.num_sessions), train.lengths)
        x = sp.coo_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, train.songs)),
            shape=(train.num_sessions, train.num_songs),
        ).tocsr()
        x.data[:] = 1.0  # binary: a song repeated in a session counts once
        x.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.sum(axis=1)).ravel())
        self.sessions_ = x
        self.sessions_t_ = x.T.tocsr()
        self.inv_norm_ = (1.0 / np.maximum(norms, 1e-12)).astype(np.float32)
        tried: dict[str, float] = {}
        if val is not None and self.k_grid:
            best = (-np.inf, self.k)
            for k in self.k_grid:
                self.k = k
                mrr = evaluate_sessions(
                    self, val, (20,), max_positions=self.tune_positions, batch_size=512
                )["mrr@20"]
                tried[str(k)] = mrr
                log.info("SKNN k=%d: val mrr@20=%.4f", k, mrr)
                if mrr > best[0]:
                    best = (mrr, k)
            self.k = best[1]
        return {"k": self.k, "train_sessions": int(x.shape[0]), "val": tried}

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if not hasattr(self, "sessions_"):
            raise _not_fitted(self)
        items = batch.items
        b, length = items.shape
        r, c = np.nonzero(items >= 0)
        lens = (items >= 0).sum(axis=1)
        # Linear decay: the last song weighs 1, the first of an n-song prefix 1/n.
        first = length - lens
        w = (c - first[r] + 1) / np.maximum(lens[r], 1)
        q = sp.coo_matrix(
            (w.astype(np.float32), (r, items[r, c])), shape=(b, self.num_songs_)
        ).tocsr()
        q.sum_duplicates()
        qn = np.sqrt(np.asarray(q.multiply(q).sum(axis=1)).ravel())
        sim = (q @ self.sessions_t_).tocsr()  # [B, N] sparse: sessions sharing a song
        sim = sp.diags(1.0 / np.maximum(qn, 1e-12)).dot(sim).dot(sp.diags(self.inv_norm_))
        sim = sp.csr_matrix(sim)
        rows, cols, vals = [], [], []
        for i in range(b):
            lo, hi = sim.indptr[i], sim.indptr[i + 1]
            if hi == lo:
                continue
            v = sim.data[lo:hi]
            j = sim.indices[lo:hi]
            if hi - lo > self.k:
                keep = np.argpartition(-v, self.k - 1)[: self.k]
                v, j = v[keep], j[keep]
            rows.append(np.full(len(v), i))
            cols.append(j)
            vals.append(v)
        scores = np.zeros((b, self.num_songs_), dtype=np.float32)
        if rows:
            nb = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(b, self.sessions_.shape[0]),
            )
            scores += (nb @ self.sessions_).toarray()
        scores += 1e-4 * self.popularity_[None, :]
        return scores

    def num_parameters(self) -> int:
        return 0


# --------------------------------------------------------------------------- SessionGNN


class _Rows:
    """A fixed sparse matrix whose rows are gathered as weighted sums of embedding rows
    (``F.embedding_bag``), so a training step only propagates the songs it touches."""

    def __init__(self, m: sp.spmatrix) -> None:
        m = sp.csr_matrix(m)
        m.sort_indices()
        self.indptr = m.indptr.astype(np.int64)
        self.indices = m.indices.astype(np.int64)
        self.data = m.data.astype(np.float32)

    def __call__(self, table: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        """Shapes: table [S, d], rows int64 [R] -> [R, d] (row r: sum_j m[r, j] table[j])."""
        from gnn._session import _ranges

        lens = self.indptr[rows + 1] - self.indptr[rows]
        take = _ranges(self.indptr[rows], lens)
        offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        return F.embedding_bag(
            torch.from_numpy(self.indices[take]),
            table,
            torch.from_numpy(offsets),
            mode="sum",
            per_sample_weights=torch.from_numpy(self.data[take]),
            include_last_offset=False,
        )


#: Smoothing of the transition feature (:func:`edge_rows`).
EDGE_EPS = 1e-3


def edge_rows(
    counts: sp.csr_matrix,
    items: np.ndarray,
    col: int,
    leave_out: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Transition log-odds from the prefix song in column ``col``: row b holds
    ``log(1 + P(. | items[b, col]) / EDGE_EPS)`` over training transitions, zero where a
    transition was never seen (and for padding) -- ``log(P + eps)`` up to a per-row constant,
    so a weight on it can rank observed transitions first the way a Markov chain does.

    ``leave_out`` (training only): the targets whose own transition ``items[b, col] -> target``
    is one of the counts; it is taken out (leave-one-out), so the feature means the same in
    training as for held-out sessions.

    Shapes:
        counts: [S, S]; items: int64 [B, L] -> [B, S] sparse
    """
    from gnn._session import _ranges

    src = items[:, col]
    ok = src >= 0
    a = np.maximum(src, 0)
    lens = np.where(ok, counts.indptr[a + 1] - counts.indptr[a], 0)
    take = _ranges(counts.indptr[a], lens)
    rows = np.repeat(np.arange(len(src)), lens)
    cols = counts.indices[take].astype(np.int64)
    vals = counts.data[take].astype(np.float32)
    outdeg = np.bincount(rows, weights=vals, minlength=len(src))
    if leave_out is not None:
        vals = vals - (cols == np.asarray(leave_out)[rows])
        outdeg = outdeg - ok
    keep = vals > 0
    rows, cols = rows[keep], cols[keep]
    prob = vals[keep] / np.maximum(outdeg[rows], 1.0)
    return sp.csr_matrix(
        (np.log1p(prob / EDGE_EPS).astype(np.float32), (rows, cols)),
        shape=(len(src), counts.shape[1]),
    )


class SessionNet(nn.Module):
    """Scores every song as the next play of a prefix.

    Song representation: ``h0 = E_song + E_artist[artist]``, propagated once over the
    symmetric-normalised training transition graph ``h = h0 + P h0``; each prefix song is
    encoded from ``[h, A_out h0]`` (itself and the mean of its observed successors) plus a
    reverse-position embedding. Readout (SR-GNN): ``alpha_i = q^T sigmoid(W1 x_last +
    W2 x_i)``, ``s = W3 [x_last; sum_i alpha_i x_i]``, plus projections of the user and
    hour-of-day embeddings (a learned "unknown" row each). Logits: ``scale * cos(s, h)``
    plus learned weights on the transition graph's edges from the last two prefix songs,
    ``edge[0] * f(b | x_last) + edge[1] * f(b | x_last-1)`` with ``f`` the smoothed log
    transition probability of :func:`edge_rows`.

    Args:
        num_songs, num_artists, num_users: table sizes.
        song_artist: int64 [S] artist per song (-1: none).
        sym, out: sparse [S, S] propagation matrices (``P`` and row-normalised ``A_out``).
        dim: embedding size (default 64). max_len: longest prefix (default 50).
        dropout: on the prefix encodings (default 0.2). scale: logit scale (default 12).

    Shapes:
        items [B, L] (-1 pads), user [B], hour [B] (-1 unknown) -> logits [B, S]
    """

    def __init__(
        self,
        *,
        num_songs: int,
        num_artists: int,
        num_users: int,
        song_artist: np.ndarray,
        sym: sp.spmatrix,
        out: sp.spmatrix,
        dim: int = 64,
        max_len: int = 50,
        dropout: float = 0.2,
        scale: float = 12.0,
    ) -> None:
        super().__init__()
        self.num_songs, self.dim, self.scale = num_songs, dim, scale
        self.song = nn.Embedding(num_songs, dim)
        self.artist = nn.Embedding(num_artists + 1, dim)
        self.user = nn.Embedding(num_users + 1, dim)
        self.hour = nn.Embedding(HOURS + 1, dim)
        self.position = nn.Embedding(max_len, dim)
        self.encode = nn.Linear(2 * dim, dim)
        self.w1 = nn.Linear(dim, dim, bias=False)
        self.w2 = nn.Linear(dim, dim)
        self.q = nn.Linear(dim, 1, bias=False)
        self.w3 = nn.Linear(2 * dim, dim)
        self.ctx = nn.Linear(2 * dim, dim)
        self.drop = nn.Dropout(dropout)
        self.edge = nn.Parameter(torch.tensor([1.0, 0.3]))
        artist = np.where(song_artist >= 0, song_artist, num_artists)
        self.register_buffer("song_artist", torch.from_numpy(artist.astype(np.int64)))
        self.sym = _Rows(sym)
        self.out = _Rows(out)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.song, self.artist, self.user, self.hour, self.position):
            nn.init.normal_(emb.weight, std=0.1)
        for lin in (self.encode, self.w1, self.w2, self.q, self.w3, self.ctx):
            lin.reset_parameters()
        with torch.no_grad():
            self.edge.copy_(torch.tensor([1.0, 0.3]))

    def songs(self, rows: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Song representations ``h`` and successor means ``A_out h0`` of ``rows`` (default
        all songs), each [R, d]."""
        h0 = self.song.weight + self.artist(self.song_artist)
        if rows is None:
            rows = np.arange(self.num_songs, dtype=np.int64)
        idx = torch.from_numpy(rows)
        return h0[idx] + self.sym(h0, rows), self.out(h0, rows)

    def session(
        self,
        items: torch.Tensor,
        user: torch.Tensor,
        hour: torch.Tensor,
        h: torch.Tensor,
        succ: torch.Tensor,
    ) -> torch.Tensor:
        """Shapes: items [B, L], user [B], hour [B] -> session vectors [B, d]."""
        mask = items >= 0
        idx = items.clamp(min=0)
        length = items.shape[1]
        pos = torch.arange(length - 1, -1, -1, device=items.device)  # 0 = last played
        x = torch.tanh(self.encode(torch.cat([h[idx], succ[idx]], dim=-1)) + self.position(pos))
        x = self.drop(x) * mask.unsqueeze(-1)
        last = x[:, -1]
        alpha = self.q(torch.sigmoid(self.w1(last).unsqueeze(1) + self.w2(x))).squeeze(-1)
        alpha = alpha * mask
        glob = (alpha.unsqueeze(-1) * x).sum(dim=1)
        s = self.w3(torch.cat([last, glob], dim=-1))
        u = self.user(torch.where(user >= 0, user, self.user.num_embeddings - 1))
        hr = self.hour(torch.where(hour >= 0, hour, HOURS))
        return s + self.ctx(torch.cat([u, hr], dim=-1))

    def forward(self, items: torch.Tensor, user: torch.Tensor, hour: torch.Tensor) -> torch.Tensor:
        h, succ = self.songs()
        s = self.session(items, user, hour, h, succ)
        return self.scale * F.normalize(s, dim=-1) @ F.normalize(h, dim=-1).T


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


SESSION_MODELS: dict[str, type[SessionModel]] = {
    "popularity": SessionPopularity,
    "markov": Markov,
    "sknn": SKNN,
    "sessiongnn": SessionGNN,
}
