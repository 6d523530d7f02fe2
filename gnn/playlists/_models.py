"""The playlist GNN: LightGCN-style propagation over playlist-song-artist-genre, inductive queries.

Songs start from their own embedding plus the mean embedding of their artists and the weighted
mean of their genres. ``layers`` rounds of propagation then pass song -> playlist -> song over
the training playlists (symmetric degree normalisation, no weights, no non-linearity, as
LightGCN), and a song's final embedding is the mean of its layers. Playlists have no free
embedding: a playlist, held out or not, is the mean of its seed songs' final embeddings plus
the mean embedding of its name tokens, so held-out playlists need no training. A song's score
for a playlist is ``<query, song> + bias[song]``; the bias carries popularity for K = 0.

Training mimics the evaluation: a batch of training playlists is cut at a random bucket K,
the first K tracks and the name form the query and a full softmax over all songs (seeds
masked) is fitted to the rest. The batch playlists' own edges are removed from the
propagation graph for that step, so no target leaks through the graph; held-out playlists are
never in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _mean_matrix(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, shape: tuple[int, int]):
    """A sparse row-normalised [n_rows, n_cols] matrix (rows without entries stay zero)."""
    rows_t = torch.as_tensor(rows, dtype=torch.long)
    w_t = torch.as_tensor(w, dtype=torch.float32)
    sums = torch.zeros(shape[0]).index_add_(0, rows_t, w_t)
    vals = w_t / sums[rows_t].clamp_min(1e-12)
    idx = torch.stack([rows_t, torch.as_tensor(cols, dtype=torch.long)])
    return torch.sparse_coo_tensor(idx, vals, shape, check_invariants=False).coalesce()


class PlaylistGNNModule(nn.Module):
    """Song, artist, genre and name-token embeddings with LightGCN propagation over playlists.

    Args:
        num_songs, num_artists, num_genres, num_tokens: vocabulary sizes.
        song_artist, song_genre: int64 [2, E] (song, artist|genre) edges;
            ``song_genre_weight`` float32 [E_sg] (default all 1).
        dim: embedding size (default 64).
        layers: song -> playlist -> song propagation rounds (default 2).

    Shapes:
        forward(ps_song, ps_playlist, num_playlists): playlist-song edges int64 [E_ps] each
            -> song embeddings float32 [S, dim]
        query(z, seeds, tokens): seeds, tokens as lists of B int arrays -> float32 [B, dim]
    """

    def __init__(
        self,
        num_songs: int,
        num_artists: int,
        num_genres: int,
        num_tokens: int,
        song_artist: np.ndarray,
        song_genre: np.ndarray,
        song_genre_weight: np.ndarray | None = None,
        *,
        dim: int = 64,
        layers: int = 2,
    ):
        super().__init__()
        self.num_songs, self.dim, self.layers = num_songs, dim, layers
        self.song = nn.Embedding(num_songs, dim)
        self.artist = nn.Embedding(max(num_artists, 1), dim)
        self.genre = nn.Embedding(max(num_genres, 1), dim)
        self.token = nn.Embedding(max(num_tokens, 1), dim)
        self.bias = nn.Parameter(torch.zeros(num_songs))
        sa = np.asarray(song_artist, dtype=np.int64).reshape(2, -1)
        sg = np.asarray(song_genre, dtype=np.int64).reshape(2, -1)
        sgw = (
            np.ones(sg.shape[1], np.float32)
            if song_genre_weight is None
            else np.asarray(song_genre_weight, np.float32)
        )
        self._sa = _mean_matrix(
            sa[0], sa[1], np.ones(sa.shape[1], np.float32), (num_songs, max(num_artists, 1))
        )
        self._sg = _mean_matrix(sg[0], sg[1], sgw, (num_songs, max(num_genres, 1)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.song, self.artist, self.genre, self.token):
            nn.init.normal_(emb.weight, std=0.1)
        nn.init.zeros_(self.bias)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(songs={self.num_songs}, artists={self.artist.num_embeddings}, "
            f"genres={self.genre.num_embeddings}, tokens={self.token.num_embeddings}, "
            f"dim={self.dim}, layers={self.layers})"
        )

    def forward(
        self, ps_song: torch.Tensor, ps_playlist: torch.Tensor, num_playlists: int
    ) -> torch.Tensor:
        h = (
            self.song.weight
            + torch.sparse.mm(self._sa, self.artist.weight)
            + torch.sparse.mm(self._sg, self.genre.weight)
        )
        if self.layers == 0 or ps_song.numel() == 0:
            return h
        ones = torch.ones(ps_song.numel())
        deg_s = torch.zeros(self.num_songs).index_add_(0, ps_song, ones)
        deg_p = torch.zeros(num_playlists).index_add_(0, ps_playlist, ones).clamp_min(1.0)
        w = (deg_s[ps_song].clamp_min(1.0) * deg_p[ps_playlist]).rsqrt()[:, None]
        # a song with no training playlist keeps its input embedding in every layer
        isolated = (deg_s == 0).float()[:, None]
        out, cur = h, h
        for _ in range(self.layers):
            # two hops per layer: song -> playlist -> song (gather / scatter-add)
            msg = cur.index_select(0, ps_song) * w
            pl = torch.zeros(num_playlists, self.dim).index_add(0, ps_playlist, msg)
            msg = pl.index_select(0, ps_playlist) * w
            cur = torch.zeros(self.num_songs, self.dim).index_add(0, ps_song, msg)
            cur = cur + h * isolated
            out = out + cur
        return out / (self.layers + 1)

    @staticmethod
    def _bags(lists: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        lens = [len(x) for x in lists]
        flat = np.concatenate([np.asarray(x, np.int64) for x in lists]) if sum(lens) else []
        offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        return torch.as_tensor(flat, dtype=torch.long), torch.as_tensor(offsets)

    def query(
        self, z: torch.Tensor, seeds: Sequence[np.ndarray], tokens: Sequence[np.ndarray]
    ) -> torch.Tensor:
        s_idx, s_off = self._bags(seeds)
        t_idx, t_off = self._bags(tokens)
        q = F.embedding_bag(s_idx, z, s_off, mode="mean")
        return q + F.embedding_bag(t_idx, self.token.weight, t_off, mode="mean")
