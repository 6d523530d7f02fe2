""":class:`PlaylistMixture`: a weighted sum of simple continuation scores, the weights fitted
per seed-count bucket on validation R-precision.

Which evidence continues a playlist best depends on how much of it is given: with no track the
name is all there is, with one track co-occurrence with that track is noisy and the name still
helps, with 25 tracks item regression (EASE^R) knows the playlist. Each part below is a score
over the catalogue counted from the training playlists alone (no users, no genres: the Million
Playlist Dataset has neither):

``ease``
    EASE^R item scores ``x B`` (:class:`gnn.playlists.EASEContinuer`, its ``l2`` tuned on
    validation as usual).
``name_exact``
    The share of training playlists with the same normalised name that hold the song.
``name_words``
    The mean over the name's words of the share of training playlists with that word.
``itemknn``
    Cosine co-occurrence with the seeds (:class:`gnn.playlists.ItemKNNContinuer`).
``playlistknn``
    Playlist neighbours: the training playlists sharing most seeds (cosine, the top
    ``neighbours``), each adding its songs with weight ``similarity ** 2``.
``artist``
    The seeds' artists (share of the seeds) times the song's share of its artist's training
    playlist entries.
``popularity``
    Training playlist counts.

``ease``, ``itemknn``, ``playlistknn`` and ``popularity`` are scaled per playlist to a maximum
of 1 (the other parts are shares already) and the model ranks by ``sum_k w_b[k] *
part_k``, where ``b`` is the bucket of the input's number of seed tracks (0, 1, 2-5, 6-10,
11 or more; :data:`BUCKETS`). The weights of a bucket are fitted by coordinate ascent over
:data:`GRID` on the validation cases of that bucket (R-precision, the challenge's first
figure), starting from EASE^R alone (for bucket 0 the name, weighted as ``namepop`` does). A bucket
without validation cases keeps that start, so without validation the model ranks as EASE^R
does (up to ties): the search only moves away from the bar where validation says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from gnn.playlists._base import PlaylistModel
from gnn.playlists._baselines import EASEContinuer
from gnn.playlists._data import Cases
from gnn.playlists._evaluate import case_metrics

log = logging.getLogger(__name__)

#: The parts, in weight order (module docstring).
PARTS = (
    "ease",
    "name_exact",
    "name_words",
    "itemknn",
    "playlistknn",
    "artist",
    "popularity",
)

#: The parts scaled per playlist to a maximum of 1; the others are shares in [0, 1] already.
SCALED = ("ease", "itemknn", "playlistknn", "popularity")

#: Lower ends of the seed-count buckets: 0, 1, 2-5, 6-10, 11+.
BUCKETS = (0, 1, 2, 6, 11)

#: Candidate weights of the coordinate ascent.
GRID = (0.0, 0.003, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def _bucket(n_seeds: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(BUCKETS), np.asarray(n_seeds), side="right") - 1


def _ease_key(m: EASEContinuer) -> tuple[Any, ...]:
    return (tuple(m.l2_grid), m.min_count, m.max_val_cases)


class PlaylistMixture(PlaylistModel):
    """Per-bucket weighted sum of continuation scores, weights fitted on validation.

    Args:
        neighbours: training playlists kept by ``playlistknn`` (default 50).
        rounds: coordinate-ascent passes per bucket (default 3).
        max_val_cases: validation cases used for fitting (default 1500; a seeded sample when
            there are more).
        ease: arguments of :class:`EASEContinuer` (default none).

    Shapes:
        scores: B seed lists (and names) -> float64 [B, S]
    """

    name = "playlistmix"

    def __init__(
        self,
        neighbours: int = 50,
        rounds: int = 3,
        max_val_cases: int = 1500,
        ease: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if neighbours < 1 or rounds < 0 or max_val_cases < 1:
            raise ValueError(
                "neighbours and max_val_cases must be >= 1 and rounds >= 0 "
                f"(got {neighbours}, {max_val_cases}, {rounds})"
            )
        self.neighbours = neighbours
        self.rounds = rounds
        self.max_val_cases = max_val_cases
        self.ease = EASEContinuer(**dict(ease or {}))
        self.weights = self._start()
        self.song_artist = np.zeros(0, np.int64)
        self.artist_share = np.zeros(0, np.float64)
        self._set_matrix(sp.csr_matrix((0, 0), dtype=np.float32))
        self._adopted: list[str] = []

    @staticmethod
    def _start() -> np.ndarray:
        """EASE^R alone; without seeds the name as ``namepop`` scores it (twice the exact
        name's share plus the words'). Shapes: [len(BUCKETS), len(PARTS)]"""
        w = np.zeros((len(BUCKETS), len(PARTS)))
        w[0, PARTS.index("name_exact")] = 2.0
        w[0, PARTS.index("name_words")] = 1.0
        w[1:, PARTS.index("ease")] = 1.0
        return w

    def num_parameters(self) -> int:
        return self.ease.num_parameters() + int(self.weights.size)

    def adopt(self, fitted: Mapping[str, PlaylistModel]) -> list[str]:
        """Take an ``ease`` fitted in the same comparison (same configuration) instead of
        fitting it again; returns the names taken."""
        other = fitted.get("ease")
        if isinstance(other, EASEContinuer) and _ease_key(other) == _ease_key(self.ease):
            self.ease, self._adopted = other, ["ease"]
        return list(self._adopted)

    # -- fitting ------------------------------------------------------------------------------

    def _fit(self, corpus, train, x, val, progress):  # type: ignore[no-untyped-def]
        info: dict[str, Any] = {}
        if "ease" not in self._adopted:
            sub = self.ease.fit(corpus, train, val=val, progress=progress)
            info["ease"] = {k: v for k, v in sub.items() if k != "curve"}
        self._adopted = []
        self._set_matrix(sp.csr_matrix(x, dtype=np.float32))
        self._set_artists(np.asarray(corpus.song_artist, dtype=np.int64))
        self.weights = self._start()
        tried: dict[str, Any] = {}
        if isinstance(val, Cases) and len(val):
            if len(val) > self.max_val_cases:
                rng = np.random.default_rng(0)
                val = val.take(np.sort(rng.choice(len(val), self.max_val_cases, replace=False)))
            tried = self._fit_weights(val, progress)
        info.update(
            weights={
                f"{lo}+": dict(zip(PARTS, map(float, w), strict=True))
                for lo, w in zip(BUCKETS, self.weights, strict=True)
            },
            val=tried,
            reused=["ease"] if "ease" not in info else [],
        )
        return info

    def _set_matrix(self, x: sp.csr_matrix) -> None:
        self.x = x
        self._xc = sp.csc_matrix(x)
        self._xt = sp.csr_matrix(x.T)

    def _set_artists(self, song_artist: np.ndarray) -> None:
        self.song_artist = song_artist
        known = song_artist >= 0
        a = np.where(known, song_artist, 0)
        total = np.bincount(a[known], weights=self.popularity[known] + 1.0, minlength=1)
        share = np.zeros(self.num_songs)
        share[known] = (self.popularity[known] + 1.0) / total[a[known]]
        self.artist_share = share

    def _fit_weights(self, val: Cases, progress: Any) -> dict[str, Any]:
        parts = self.parts(val.seeds, val.names)  # [P, B, S]
        buckets = _bucket([len(s) for s in val.seeds])
        out: dict[str, Any] = {}
        for b in range(len(BUCKETS)):
            rows = np.flatnonzero(buckets == b)
            if not len(rows):
                continue
            sub = parts[:, rows]
            mask = [np.asarray(val.seeds[i], np.int64) for i in rows]
            targets = [val.targets[i] for i in rows]
            w = self.weights[b].copy()

            def score(w: np.ndarray, sub=sub, mask=mask, targets=targets) -> float:
                return self._r_precision(np.tensordot(w, sub, axes=1), mask, targets)

            best = start = score(w)
            for _ in range(self.rounds):
                improved = False
                for k in range(len(PARTS)):
                    for g in GRID:
                        if g == w[k]:
                            continue
                        old, w[k] = w[k], g
                        s = score(w)
                        if s > best + 1e-9:
                            best, improved = s, True
                        else:
                            w[k] = old
                if not improved:
                    break
            self.weights[b] = w
            out[f"{BUCKETS[b]}+"] = {"cases": len(rows), "start": start, "fitted": best}
            msg = f"playlistmix bucket {BUCKETS[b]}+: val R-precision {start:.4f} -> {best:.4f}"
            log.info(msg)
            if progress:
                progress(msg)
        return out

    def _r_precision(
        self, scores: np.ndarray, seeds: Sequence[np.ndarray], targets: Sequence[np.ndarray]
    ) -> float:
        """Mean R-precision (artist credit included) of ``scores`` as ranked by :meth:`rank`."""
        s = scores + self._tiebreak()[None, :]
        total = 0.0
        for i, (seed, g) in enumerate(zip(seeds, targets, strict=True)):
            row = s[i].copy()
            row[seed] = -np.inf
            n = min(len(g), len(row))
            top = np.argpartition(-row, n - 1)[:n]
            top = top[np.argsort(-row[top], kind="stable")]
            total += case_metrics(top, g, self.song_artist)[0]
        return total / max(len(seeds), 1)

    # -- scoring ------------------------------------------------------------------------------

    def parts(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        """Every part; the :data:`SCALED` ones with each row scaled to a maximum of 1.

        Shapes: B seed lists -> float32 [len(PARTS), B, S]
        """
        b, s_count = len(seeds), self.num_songs
        out = np.zeros((len(PARTS), b, s_count), dtype=np.float32)
        if b == 0:
            return out
        out[0] = self.ease.item_scores(seeds)
        xc, xt = self._xc, self._xt
        inv_sqrt = 1.0 / np.sqrt(np.maximum(self.popularity, 1.0))
        norm = 1.0 / np.sqrt(np.maximum(np.asarray(self.x.sum(axis=1)).ravel(), 1.0))
        art = self.song_artist
        for i, (seed, name) in enumerate(zip(seeds, names, strict=True)):
            exact, words = self.ease._name_rows(name)
            if exact >= 0:
                out[1, i] = self.ease.name_songs[exact].toarray().ravel()
            if words:
                out[2, i] = np.asarray(self.ease.word_songs[words].mean(axis=0)).ravel()
            seed = np.asarray(seed, dtype=np.int64)
            if not len(seed):
                continue
            w = xc[:, seed] @ inv_sqrt[seed]  # weight per training playlist
            out[3, i] = (xt @ w) * inv_sqrt
            sim = np.asarray(xc[:, seed].sum(axis=1)).ravel() * norm  # cosine, up to a factor
            if sim.max(initial=0.0) > 0:
                k = min(self.neighbours, len(sim))
                top = np.argpartition(-sim, k - 1)[:k]
                out[4, i] = self.x[top].T @ (sim[top] ** 2)
            known = art[seed][art[seed] >= 0]
            if len(known):
                counts = np.bincount(known, minlength=int(art.max()) + 1) / len(seed)
                out[5, i] = np.where(art >= 0, counts[np.maximum(art, 0)], 0.0) * self.artist_share
        out[6] = self.popularity[None, :]
        scaled = [PARTS.index(p) for p in SCALED]
        top = np.abs(out[scaled]).max(axis=2, keepdims=True)
        out[scaled] /= np.where(top > 0, top, 1.0)
        return out

    def knows(self, seeds: np.ndarray, name: str | None) -> bool:
        seeds = np.asarray(seeds, dtype=np.int64)
        by_artist = len(self.song_artist) > 0 and bool((self.song_artist[seeds] >= 0).any())
        return by_artist or self.ease.knows(seeds, name)

    def scores(self, seeds: Sequence[np.ndarray], names: Sequence[str | None]) -> np.ndarray:
        parts = self.parts(seeds, names)
        w = self.weights[_bucket([len(s) for s in seeds])]  # [B, P]
        out = np.einsum("bp,pbs->bs", w, parts, dtype=np.float64)
        return out + self._tiebreak()[None, :]

    # -- state --------------------------------------------------------------------------------

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays, _ = self.ease.state()
        out = {"ease__" + k: v for k, v in arrays.items()}
        out.update(
            mix_weights=self.weights,
            mix_song_artist=self.song_artist,
            mix_x_indices=self.x.indices,
            mix_x_indptr=self.x.indptr,
        )
        return out

    def _state_meta(self) -> dict[str, Any]:
        _, sub = self.ease.state()
        sub.pop("song_ids", None)
        return {
            "ease": sub,
            "neighbours": self.neighbours,
            "rounds": self.rounds,
            "max_val_cases": self.max_val_cases,
            "num_train_playlists": int(self.x.shape[0]),
            "parts": list(PARTS),
            "buckets": list(BUCKETS),
        }

    def _load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        sub = {k[len("ease__") :]: v for k, v in arrays.items() if k.startswith("ease__")}
        ease = EASEContinuer.from_state(sub, {**meta["ease"], "song_ids": meta["song_ids"]})
        assert isinstance(ease, EASEContinuer)
        self.ease = ease
        self.neighbours = int(meta["neighbours"])
        self.rounds = int(meta["rounds"])
        self.max_val_cases = int(meta["max_val_cases"])
        self.weights = np.asarray(arrays["mix_weights"], dtype=np.float64)
        ind = arrays["mix_x_indices"]
        self._set_matrix(
            sp.csr_matrix(
                (np.ones(len(ind), np.float32), ind, arrays["mix_x_indptr"]),
                shape=(int(meta["num_train_playlists"]), self.num_songs),
            )
        )
        self._adopted = []
        self._set_artists(np.asarray(arrays["mix_song_artist"], dtype=np.int64))
