"""The session graph network (:class:`SessionNet`) and the transition edges it propagates over.

Song embeddings (plus their artist's) propagated over the training song-transition graph,
an SR-GNN style attention readout over the prefix, the user's embedding and an hour-of-day
embedding. :class:`gnn.sessions._train.SessionGNN` trains it.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from gnn.sessions._data import HOURS

log = logging.getLogger(__name__)


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
        from gnn.sessions._data import _ranges

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
    from gnn.sessions._data import _ranges

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
