"""An exactly explainable hybrid of item-item, artist, genre and popularity terms (issue 18).

Item-item linear models (EASE^R, RP3beta) score a song by the songs a user played next to it.
Real listening has two effects they model only indirectly: a user plays a lot of a few artists
(also their songs the user has not met yet), and users differ in how mainstream they are. The
hybrid adds those as terms, each a weighted sum over the user's played songs, so its score stays
an exact sum of per-song parts, and the parts are what its explanations say:

``score(u, i) = sum_k w_k t_k(u, i)``, with ``x_uj`` the user's plays of song ``j`` (``n_u`` in
all, ``h_u`` distinct songs), ``a(i)`` the artist of song ``i``, ``z_i`` its standardised
log-popularity and ``pi_i`` its share of its artist's listeners (training listeners):

========== ================================================ =================================
term       ``t(u, i)``                                      part of played song ``j``
========== ================================================ =================================
ease       ``(x_u B)_i / c_e(u)``                           ``B_ji / c_e(u)``
rp3beta    ``(x_u W)_i / c_r(u)``                           ``W_ji / c_r(u)``
artist     share of the user's plays by ``a(i)``            ``x_uj / n_u [a(j) = a(i)]``
artist_pop the same times ``pi_i ** 0.5``                   the same times ``pi_i ** 0.5``
colisten   ``sum_a [u played a] C_a,a(i) pi_i**0.5/c_c(u)`` split evenly over the user's songs
                                                            by ``a(j)``
genre      ``sum_g q_ug s_ig``, ``q_ug`` = u's play share   ``x_uj / n_u s_j . s_i``
mainstream ``m_u z_i``, ``m_u`` = mean ``z_j`` of u's songs ``z_j z_i / h_u``
popularity ``z_i``                                          ``z_i / h_u`` (split evenly)
========== ================================================ =================================

Every term is split over the user's played songs, so the parts of a user with a history sum
to the score exactly (the explanations' contract, as for EASE^R and ItemKNN: removing played
songs lowers the score by exactly their parts).

``B`` is EASE^R's item-item matrix, ``W`` RP3beta's, ``C`` an EASE^R fitted on the binary
user x artist matrix (artist co-listening: artist-level propagation, which stands in for
genres where the graph has none), ``s`` the songs' genre weights (no genre term when the
graph has no genres: Last.fm-shaped data). ``c_e``, ``c_r`` and ``c_c`` are the user's largest
value of the raw term, so the terms share one scale for every user. ``mainstream`` with
``popularity`` is a per-user popularity exponent: ``(w_m m_u + w_p) z_i``.

The weights are fitted on validation (the plays after training, as every other model's
hyper-parameters): a listwise softmax over each user's candidates (EASE^R's top
``candidates`` and the artist term's top ``candidates / 2``), maximising the likelihood of the
songs the user then played for the first time, with the EASE^R weight fixed to 1 and a learned
temperature. A smooth fit of seven numbers is much less noisy on a few hundred users than a
grid search on NDCG@10, and it is deterministic (L-BFGS on the CPU, no sampling).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from gnn.core._recommender import Recommender
from gnn.graph._data import TrainData, genre_multi_hot
from gnn.users._baselines import COLD_SCORE, EASE, RP3beta, _check_view, adopt_ease_rp3
from gnn.users._diversity import song_artists
from spotify_engine.errors import NotFittedError

log = logging.getLogger(__name__)

#: The terms, in order; ``ease`` has weight 1, the others are fitted.
TERMS: tuple[str, ...] = (
    "ease",
    "rp3beta",
    "artist",
    "artist_pop",
    "colisten",
    "genre",
    "mainstream",
    "popularity",
)
#: Exponent on a song's share of its artist's listeners in ``artist_pop`` and ``colisten``.
WITHIN = 0.5
_TINY = 1e-12


def _row_max(x: np.ndarray) -> np.ndarray:
    """Each row's largest value, 1 where it is not positive (a user the term says nothing of)."""
    m = x.max(axis=1, keepdims=True) if x.shape[1] else np.ones((len(x), 1))
    return np.where(m > _TINY, m, 1.0)


class TasteHybrid(Recommender):
    """EASE^R + RP3beta + the user's artists, artist co-listening, genres and popularity.

    See the module docstring for the terms and their exact parts.

    Args:
        weights: fixed weights per term (missing terms: 0, ``ease``: 1); default None: fitted
            on validation (``fit`` then needs ``val``).
        ease_l2: EASE^R's regularisation, or a grid tuned on validation (default: EASE^R's
            own grid); used only when no fitted EASE^R is adopted.
        ease_tune_items: the grid is tuned on an EASE^R of this many most-listened songs and
            only the chosen value is fitted on every song (:class:`EASE`'s ``tune_items``;
            default 5,000; None fits every grid value on every song). At 2,000 users / 20,000
            songs: one dense 20,000 x 20,000 inverse instead of three.
        rp3_alpha, rp3_beta: RP3beta's, likewise (default: its own grids).
        candidates: EASE^R's top songs per user the weights are fitted on (default 100).
        artist_l2: the artist co-listening EASE^R's regularisation, relative to the mean
            number of listeners per artist (default 1.0).
        max_artists: artists in the co-listening model, the most listened (default 5,000).
        l2: ridge on the fitted weights (default 1e-3).
        batch_size: users per block when scoring (default 128).
    """

    name = "hybrid"

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        ease_l2: float | Sequence[float] | None = None,
        ease_tune_items: int | None = 5_000,
        rp3_alpha: float | Sequence[float] | None = None,
        rp3_beta: float | Sequence[float] | None = None,
        candidates: int = 100,
        artist_l2: float = 1.0,
        max_artists: int = 5_000,
        l2: float = 1e-3,
        batch_size: int = 128,
    ) -> None:
        if weights is not None:
            unknown = sorted(set(weights) - set(TERMS))
            if unknown:
                raise ValueError(f"weights name unknown terms {unknown}; terms are {TERMS}")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1 (got {candidates})")
        if not artist_l2 > 0:
            raise ValueError(f"artist_l2 must be > 0 (got {artist_l2})")
        if max_artists < 1:
            raise ValueError(f"max_artists must be >= 1 (got {max_artists})")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0 (got {l2})")
        if ease_tune_items is not None and ease_tune_items < 1:
            raise ValueError(f"ease_tune_items must be >= 1 (got {ease_tune_items})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
        self.fixed = dict(weights) if weights is not None else None
        self.ease_args: dict[str, Any] = {"tune_items": ease_tune_items}
        if ease_l2 is not None:
            self.ease_args["l2"] = ease_l2
        self.rp3_args: dict[str, Any] = {
            k: v for k, v in (("alpha", rp3_alpha), ("beta", rp3_beta)) if v is not None
        }
        self.candidates = candidates
        self.artist_l2 = artist_l2
        self.max_artists = max_artists
        self.l2 = l2
        self.batch_size = batch_size
        self.ease: EASE | None = None
        self.rp3: RP3beta | None = None
        self.reused_seconds = 0.0
        self.weights_: np.ndarray | None = None
        self.num_songs_: int | None = None
        self.artist_: np.ndarray | None = None  # [S] artist index, -1: none
        self.within_: np.ndarray | None = None  # [S] pi_i ** WITHIN
        self.z_: np.ndarray | None = None  # [S]
        self.num_artists_ = 0
        self.artist_row_: np.ndarray | None = None  # [A] row of C, -1: not modelled
        self.colisten_: np.ndarray | None = None  # [m, m] C over the modelled artists
        self.genres_: sp.csr_matrix | None = None  # [S, G] song genre weights

    # -- fitting ---------------------------------------------------------------------------------

    def adopt(self, fitted: dict[str, Recommender], seconds: dict[str, float]) -> None:
        """Reuse fitted ``ease`` and ``rp3beta`` models (the others are ignored)."""
        adopt_ease_rp3(self, fitted, seconds)

    def memory_bytes(self, train: TrainData) -> int:
        """Peak bytes :meth:`fit` needs: EASE^R's (:meth:`EASE.memory_bytes`) unless a fitted
        one was adopted, plus the artist co-listening model's (the same estimate over at most
        ``max_artists`` artists)."""
        ease = 0 if self.ease is not None else EASE().memory_bytes(train)
        artists = min(train.snapshot.num_artists, self.max_artists)
        return ease + int(4.5 * artists * artists * 8)

    def _fit_static(self, train: TrainData) -> None:
        """Everything but the weights: artists, popularity, co-listening, genres."""
        snap = train.snapshot
        n_songs = train.num_songs
        self.num_songs_ = n_songs
        art = song_artists(snap)
        self.artist_ = art
        self.num_artists_ = snap.num_artists
        listeners = np.diff(train.matrix.tocsc().indptr).astype(np.float64)
        has = art >= 0
        per_artist = np.bincount(art[has], weights=listeners[has], minlength=snap.num_artists)
        pi = np.zeros(n_songs)
        pi[has] = np.divide(
            listeners[has],
            per_artist[art[has]],
            out=np.zeros(int(has.sum())),
            where=per_artist[art[has]] > 0,
        )
        self.within_ = pi**WITHIN
        lp = np.log1p(listeners)
        sd = float(lp.std())
        self.z_ = (lp - lp.mean()) / (sd if sd > 0 else 1.0)
        # artist co-listening: EASE^R on the binary user x artist matrix of training
        ua = self._user_artists(train.matrix, binary=True)
        fans = np.asarray(ua.sum(axis=0)).ravel()
        keep = np.flatnonzero(fans > 0)
        if len(keep) > self.max_artists:
            keep = np.sort(keep[np.argsort(-fans[keep], kind="stable")[: self.max_artists]])
        self.artist_row_ = np.full(ua.shape[1], -1, dtype=np.int64)
        self.artist_row_[keep] = np.arange(len(keep))
        colisten = np.zeros((len(keep), len(keep)), dtype=np.float32)
        if len(keep) > 1:
            sub = ua[:, keep]
            gram = (sub.T @ sub).toarray().astype(np.float64)
            gram[np.diag_indices_from(gram)] += self.artist_l2 * float(np.mean(np.diag(gram)))
            p = np.linalg.inv(gram)
            b = -p / np.diag(p)[None, :]
            np.fill_diagonal(b, 0.0)
            colisten[:] = b
        self.colisten_ = colisten
        if snap.num_genres:
            song_g, _ = genre_multi_hot(snap)
            self.genres_ = sp.csr_matrix(song_g.astype(np.float64))
        else:
            self.genres_ = None

    def _user_artists(self, matrix: sp.csr_matrix, *, binary: bool) -> sp.csr_matrix:
        """Users x artists: plays (or 1 if played) of each artist's songs."""
        assert self.artist_ is not None
        art = self.artist_
        n_art = max(int(art.max(initial=-1)) + 1, self.num_artists_)
        has = np.flatnonzero(art >= 0)
        onehot = sp.csr_matrix(
            (np.ones(len(has)), (has, art[has])), shape=(len(art), max(n_art, 1))
        )
        m = sp.csr_matrix(matrix, dtype=np.float64)
        out = (m @ onehot).tocsr()
        if binary:
            out.data[:] = 1.0
        return out

    def fit(
        self, train: TrainData, *, val: tuple[TrainData, list[np.ndarray]] | None = None
    ) -> dict[str, Any]:
        if self.fixed is None and val is None:
            raise ValueError("hybrid fits its weights on validation: pass val, or weights=")
        t0 = time.perf_counter()
        ease_info: dict[str, Any] = {}
        if self.ease is None:
            self.ease = EASE(**self.ease_args)
            ease_info = self.ease.fit(train, val=val)
        if self.rp3 is None:
            self.rp3 = RP3beta(**self.rp3_args)
            self.rp3.fit(train, val=val)
        self._fit_static(train)
        info: dict[str, Any] = {
            "ease_l2": self.ease.l2_,
            "rp3_alpha": self.rp3.alpha_,
            "rp3_beta": self.rp3.beta_,
            "genres": self.genres_ is not None,
            "reused_train_seconds": self.reused_seconds,
        }
        if "tuned_on_items" in ease_info:
            info["ease_tuned_on_items"] = ease_info["tuned_on_items"]
        if self.fixed is not None:
            w = np.array([self.fixed.get(t, 1.0 if t == "ease" else 0.0) for t in TERMS])
            self.weights_ = w
        else:
            assert val is not None
            self.weights_, fit_info = self._fit_weights(*val)
            info.update(fit_info)
        info["weights"] = dict(zip(TERMS, map(float, self.weights_), strict=True))
        log.info("hybrid: weights %s (%.1fs)", info["weights"], time.perf_counter() - t0)
        return info

    def _fit_weights(
        self, observed: TrainData, relevant: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Listwise softmax over each user's candidates, ``ease`` weight 1, learned temperature."""
        users = np.array([u for u in range(observed.num_users) if len(relevant[u])], dtype=int)
        feats: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        used = [t for t in TERMS if t != "genre" or self.genres_ is not None]
        cols = [TERMS.index(t) for t in used]
        m = observed.matrix
        for start in range(0, len(users), self.batch_size):
            batch = users[start : start + self.batch_size]
            terms = self._terms(batch, observed)[:, cols]  # [b, K, S]
            for n, u in enumerate(batch):
                seen = m.indices[m.indptr[u] : m.indptr[u + 1]]
                e = terms[n, 0].copy()
                a = terms[n, used.index("artist")].copy()
                e[seen] = -np.inf
                a[seen] = -np.inf
                top = self._top(e, self.candidates)
                top_a = self._top(a, max(1, self.candidates // 2))
                cand = np.union1d(top, top_a[np.isfinite(a[top_a]) & (a[top_a] > 0)])
                hit = np.isin(cand, relevant[u])
                if not hit.any():
                    continue
                feats.append(terms[n][:, cand].T.astype(np.float32))
                targets.append(hit)
        if not feats:
            log.warning("hybrid: no validation user has a relevant song among the candidates")
            alone = np.zeros(len(TERMS))
            alone[0] = 1.0
            return alone, {"fit_users": 0}
        width = max(len(f) for f in feats)
        k = len(used)
        x = np.zeros((len(feats), width, k), dtype=np.float32)
        y = np.zeros((len(feats), width), dtype=np.float32)
        pad = np.ones((len(feats), width), dtype=bool)
        for n, (f, h) in enumerate(zip(feats, targets, strict=True)):
            x[n, : len(f)] = f
            y[n, : len(f)] = h / h.sum()
            pad[n, : len(f)] = False
        xt, yt, padt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(pad)
        wt = torch.zeros(k - 1, dtype=torch.float32, requires_grad=True)
        log_temp = torch.full((1,), 2.0, dtype=torch.float32, requires_grad=True)
        opt = torch.optim.LBFGS(
            [wt, log_temp], max_iter=200, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            s = (xt[..., 0] + xt[..., 1:] @ wt) * torch.exp(log_temp)
            s = s.masked_fill(padt, -1e9)
            loss = -(yt * torch.log_softmax(s, dim=1)).sum(dim=1).mean()
            loss = loss + self.l2 * (wt**2).sum()
            loss.backward()
            return loss

        loss = float(opt.step(closure).detach())
        out = np.zeros(len(TERMS))
        out[0] = 1.0
        out[cols[1:]] = wt.detach().numpy().astype(np.float64)
        if not np.all(np.isfinite(out)):
            log.warning("hybrid: the weight fit did not converge; EASE^R alone is used")
            out = np.zeros(len(TERMS))
            out[0] = 1.0
        return out, {
            "fit_users": len(feats),
            "fit_candidates": int((~pad).sum()),
            "fit_loss": loss,
            "temperature": float(torch.exp(log_temp).detach()),
        }

    @staticmethod
    def _top(values: np.ndarray, k: int) -> np.ndarray:
        k = min(k, len(values))
        top = np.argpartition(-values, k - 1)[:k]
        return top[np.isfinite(values[top])]

    # -- scoring ---------------------------------------------------------------------------------

    def _parts(self) -> tuple[EASE, RP3beta, np.ndarray]:
        if self.ease is None or self.rp3 is None or self.weights_ is None or self.z_ is None:
            raise NotFittedError(f"{self.name}: call fit before score")
        return self.ease, self.rp3, self.weights_

    def _terms(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Every term for a block of users.

        Shapes:
            users: int64 [n] -> float64 [n, len(TERMS), num_songs]
        """
        if self.ease is None or self.rp3 is None or self.z_ is None:
            raise NotFittedError(f"{self.name}: call fit before score")
        ease, rp3 = self.ease, self.rp3
        assert self.artist_ is not None and self.within_ is not None
        assert self.colisten_ is not None
        _check_view(self, observed, len(self.z_))
        users = np.asarray(users, dtype=np.int64)
        n, s = len(users), len(self.z_)
        out = np.zeros((n, len(TERMS), s))
        e = ease.score(users, observed).astype(np.float64)
        e[e <= COLD_SCORE / 2] = 0.0
        out[:, 0] = e / _row_max(e)
        r = rp3.score(users, observed).astype(np.float64)
        out[:, 1] = r / _row_max(r)
        x = sp.csr_matrix(observed.matrix[users], dtype=np.float64)
        plays = np.asarray(x.sum(axis=1)).ravel()
        plays[plays == 0] = 1.0
        art = self.artist_
        has = art >= 0
        share = (self._user_artists(x, binary=False).toarray()) / plays[:, None]
        out[:, 2][:, has] = share[:, art[has]]
        out[:, 3] = out[:, 2] * self.within_[None, :]
        raw = self._colisten_raw(x)
        out[:, 4] = raw / _row_max(raw)
        if self.genres_ is not None:
            q = (x @ self.genres_).toarray() / plays[:, None]
            out[:, 5] = np.asarray(q @ self.genres_.T.toarray())
        xb = x.copy()
        xb.data[:] = 1.0
        distinct = np.maximum(np.asarray(xb.sum(axis=1)).ravel(), 1.0)
        mean_z = np.asarray(xb @ self.z_).ravel() / distinct
        out[:, 6] = mean_z[:, None] * self.z_[None, :]
        out[:, 7] = self.z_[None, :]
        return out

    def score(self, users: np.ndarray, observed: TrainData) -> np.ndarray:
        """Shapes: users int64 [n] -> float32 [n, num_songs]."""
        _, _, w = self._parts()
        users = np.asarray(users, dtype=np.int64)
        out = np.empty((len(users), observed.num_songs), dtype=np.float32)
        for start in range(0, len(users), self.batch_size):
            block = users[start : start + self.batch_size]
            out[start : start + len(block)] = np.einsum(
                "nks,k->ns", self._terms(block, observed), w
            )
        return out

    def contributions(
        self, user: int, songs: np.ndarray, observed: TrainData
    ) -> tuple[np.ndarray, np.ndarray]:
        """The exact parts of ``score(user, songs)``, one row per song of the user's history
        (see the module docstring); each column sums to the song's score (a user without
        plays has no parts: their score is the popularity term alone).

        Shapes:
            songs: int64 [n] -> (history songs int64 [h], parts float64 [h, n])
        """
        ease, rp3, w = self._parts()
        assert self.artist_ is not None and self.within_ is not None and self.z_ is not None
        assert self.colisten_ is not None
        user = int(user)
        songs = np.asarray(songs, dtype=np.int64)
        x = sp.csr_matrix(observed.matrix[[user]], dtype=np.float64)
        hist = x.indices.astype(np.int64)
        order = np.argsort(hist, kind="stable")
        hist, counts = hist[order], x.data[order]
        parts = np.zeros((len(hist), len(songs)))
        if not len(hist):
            return hist, parts

        def add(h: np.ndarray, p: np.ndarray, scale: float) -> None:
            if len(h):
                parts[np.searchsorted(hist, h)] += p * scale

        e_raw = ease.score(np.array([user]), observed)[0].astype(np.float64)
        e_raw[e_raw <= COLD_SCORE / 2] = 0.0
        h, p = ease.contributions(user, songs, observed)
        add(h, p, w[0] / float(_row_max(e_raw[None])[0, 0]))
        r_raw = rp3.score(np.array([user]), observed)[0].astype(np.float64)
        h, p = rp3.contributions(user, songs, observed)
        add(h, p, w[1] / float(_row_max(r_raw[None])[0, 0]))
        art = self.artist_
        assert self.artist_row_ is not None
        a_hist, a_song = art[hist], art[songs]
        same = (a_hist[:, None] == a_song[None, :]) & (a_hist[:, None] >= 0)
        share = counts[:, None] / counts.sum() * same
        parts += share * (w[2] + w[3] * self.within_[songs][None, :])
        # co-listening: [u played a] C[a, a(i)], split evenly over u's songs by a
        rows = np.where(a_hist >= 0, self.artist_row_[np.maximum(a_hist, 0)], -1)
        cols = np.where(a_song >= 0, self.artist_row_[np.maximum(a_song, 0)], -1)
        known, ok = rows >= 0, cols >= 0
        per_artist = np.bincount(rows[known], minlength=len(self.colisten_))
        co = np.zeros((len(hist), len(songs)))
        co[np.ix_(known, ok)] = (
            self.colisten_[np.ix_(rows[known], cols[ok])] / per_artist[rows[known]][:, None]
        )
        co *= self.within_[songs][None, :]
        raw = self._colisten_raw(x)
        parts += co * (w[4] / float(_row_max(raw)[0, 0]))
        if self.genres_ is not None:
            g = self.genres_
            parts += w[5] * counts[:, None] / counts.sum() * (g[hist] @ g[songs].T).toarray()
        parts += np.outer(w[6] * self.z_[hist] + w[7], self.z_[songs]) / len(hist)
        return hist, parts

    def _colisten_raw(self, x: sp.csr_matrix) -> np.ndarray:
        """The co-listening term before its per-user scale, for a block of history rows.

        Shapes:
            x: [n, num_songs] -> float64 [n, num_songs]
        """
        assert self.artist_ is not None and self.within_ is not None
        assert self.colisten_ is not None and self.artist_row_ is not None
        art = self.artist_
        out = np.zeros((x.shape[0], len(art)))
        if not len(self.colisten_):
            return out
        fan = self._user_artists(x, binary=True)
        modelled = np.flatnonzero(self.artist_row_ >= 0)
        co = np.asarray(fan[:, modelled] @ self.colisten_, dtype=np.float64)  # [n, m]
        rows = np.where(art >= 0, self.artist_row_[np.maximum(art, 0)], -1)
        has = rows >= 0
        out[:, has] = co[:, rows[has]] * self.within_[None, has]
        return out

    def similar_items(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """EASE^R's item-item weights (the item-item part of the score)."""
        ease, _, _ = self._parts()
        return ease.similar_items(k)

    def num_parameters(self) -> int:
        ease, rp3, w = self._parts()
        assert self.colisten_ is not None
        return (
            ease.num_parameters()
            + rp3.num_parameters()
            + int(np.count_nonzero(self.colisten_))
            + len(w)
        )
