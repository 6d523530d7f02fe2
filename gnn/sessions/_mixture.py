""":class:`SessionMixture`: a gated mixture of simple next-song distributions, the gate learned
on validation MRR.

Listening sessions mix a few behaviours: playing on from the last song (what a first-order
Markov chain knows), coming back to songs the listener played before, staying with an artist,
and picking something new by taste. Each behaviour is a probability distribution over the
catalogue, counted from the training sessions alone (no genres, no albums: a Last.fm-1K log
has neither):

``transition``
    ``P(b | a)`` over consecutive training plays, ``a`` the last prefix song with a known
    successor (the :class:`gnn.sessions.Markov` statistic).
``transition2``
    The same from the song before the last.
``history``
    The user's training plays: ``count(u, b) / plays(u)`` (repeat listening).
``artist``
    Songs of the last song's artist, by their share of the artist's training plays.
``user_artist``
    The user's artists (share of the user's plays) times each song's share of its artist.
``session_artist``
    The prefix's artists, the last song weighing 1 and each earlier one half the next, times
    the song's share of its artist.
``session``
    The prefix songs themselves, weighted the same way (a repeat within the session; only
    useful when repeats are candidates, see ``gnn.sessions._data``).
``popularity``
    Training play counts (plus one): every song has some mass.

The model scores ``p(b) = sum_k g_k(c) D_k(b)``, a proper distribution, with gates ``g(c) =
softmax(W^T c)`` over the components available for the prefix (a song without an artist has
no ``artist`` component, an unknown user no ``history``) and a small context vector ``c``
(a bias; the log out-degree and the top transition probability of the last song; the user's
log play count; the log prefix length). ``W`` is fitted on validation sessions in two steps:

1. maximum likelihood of the next song (every validation position, repeats included), which
   gives well-scaled starting gates;
2. a smooth approximation of MRR (Qin et al. 2010, "ApproxNDCG"): the rank of the target
   among the union of every component's top ``candidates`` songs is ``1 + sum_j
   sigmoid((s_j - s_target) / tau)`` with ``s = log p``, and ``mean 1 / rank`` is maximised
   by Adam, prefix songs excluded as in serving. The likelihood spreads mass towards the broad
   components, which most targets (new songs) need, while MRR rewards ranking the few sharp
   candidates first; step 2 is what makes the mixture beat its sharpest part.

The temperatures ``taus`` are run in turn, each from the gates the previous one ended with
(a coarse-to-fine anneal), and the gates with the best exact validation MRR@20 are kept.
Fitting needs no gradient through the catalogue, only the component values at the targets and
candidates, so it takes seconds to a minute.
Without ``val`` the gates are uniform over the available components.

Every score is a sum of named, non-negative parts, so :meth:`SessionMixture.contributions`
says exactly why a song ranks where it does ("follows the last song", "played before"...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from gnn.sessions._base import SessionModel, _not_fitted
from gnn.sessions._baselines import transition_matrix
from gnn.sessions._data import PrefixBatch, Sessions, iter_batches, positions
from gnn.sessions._evaluate import evaluate_sessions

log = logging.getLogger(__name__)

#: The mixture's components, in gate order (see the module docstring).
COMPONENTS = (
    "transition",
    "transition2",
    "history",
    "artist",
    "user_artist",
    "session_artist",
    "session",
    "popularity",
)

#: Decay per step back of a prefix song in ``session`` and ``session_artist``.
PREFIX_DECAY = 0.5


def _row_normalised(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    total = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(total, 1e-12)) @ m, dtype=np.float32)


def _rows(m: sp.csr_matrix, idx: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Dense rows ``m[idx]``, zero where ``ok`` is false. Shapes: idx [B] -> [B, m.shape[1]]."""
    out = m[np.where(ok, idx, 0)].toarray()
    out[~ok] = 0.0
    return out


class SessionMixture(SessionModel):
    """Gated mixture of next-song distributions (module docstring), gates fitted on validation.

    Args:
        components: which of :data:`COMPONENTS` to use (default all).
        taus: approximate-rank temperatures tried; the best by validation MRR@20 is kept
            (default ``(0.2, 0.1, 0.05, 0.025)``).
        candidates: each component's top songs that form a prefix's candidate set in the MRR
            step (default 30).
        tune_positions: validation positions used for fitting (default 20,000; a seeded sample
            when there are more).
        steps: Adam steps of the MRR step per temperature (default 200).
        lr: their learning rate (default 0.05).
        seed: the sampling seed (default 0).

    Shapes:
        score: B prefixes -> float32 [B, S] (a probability per song)
    """

    name = "sessionmix"
    TAUS = (0.2, 0.1, 0.05, 0.025)

    def __init__(
        self,
        components: Sequence[str] = COMPONENTS,
        taus: Sequence[float] = TAUS,
        candidates: int = 30,
        tune_positions: int = 20_000,
        steps: int = 200,
        lr: float = 0.05,
        seed: int = 0,
    ) -> None:
        unknown = [c for c in components if c not in COMPONENTS]
        if not components or unknown:
            raise ValueError(
                f"components must be some of {', '.join(COMPONENTS)} (got {list(components)!r})"
            )
        if not taus or any(not t > 0 for t in taus):
            raise ValueError(f"taus must be > 0 (got {taus!r})")
        if candidates < 1 or tune_positions < 1 or steps < 0:
            raise ValueError(
                "candidates and tune_positions must be >= 1 and steps >= 0 "
                f"(got {candidates}, {tune_positions}, {steps})"
            )
        self.components = tuple(c for c in COMPONENTS if c in components)
        self.taus = tuple(float(t) for t in taus)
        self.candidates, self.tune_positions = int(candidates), int(tune_positions)
        self.steps, self.lr, self.seed = int(steps), float(lr), int(seed)
        self.max_len = 50
        self.tau: float | None = None
        self.gate_: np.ndarray | None = None

    def config(self) -> dict[str, Any]:
        return {
            "components": list(self.components),
            "taus": list(self.taus),
            "candidates": self.candidates,
            "tune_positions": self.tune_positions,
            "steps": self.steps,
            "lr": self.lr,
            "seed": self.seed,
            "tau": self.tau,
        }

    # -- statistics of the training sessions -------------------------------------------------

    def fit(self, train: Sessions, *, val: Sessions | None = None) -> dict[str, Any]:
        self._bind(train)
        t0 = time.perf_counter()
        s, u = train.num_songs, train.num_users
        a = train.num_artists
        counts = transition_matrix(train)
        self.out_degree_ = np.asarray(counts.sum(axis=1)).ravel()
        self.transitions_ = _row_normalised(counts)
        self.top_transition_ = np.asarray(self.transitions_.max(axis=1).todense()).ravel()
        rows = np.repeat(train.user, train.lengths)
        ones = np.ones(len(rows), dtype=np.float32)
        hist = sp.csr_matrix((ones, (rows, train.songs)), shape=(u, s))
        hist.sum_duplicates()
        self.user_plays_ = np.asarray(hist.sum(axis=1)).ravel()
        self.history_ = _row_normalised(hist)
        # Songs without an artist get the sentinel artist ``a``, which no component uses.
        self.artist_ = np.where(train.song_artist >= 0, train.song_artist, a).astype(np.int64)
        self.num_artists_ = a
        by = self.artist_[train.songs] < a
        ua = sp.csr_matrix((ones[by], (rows[by], self.artist_[train.songs][by])), shape=(u, a + 1))
        ua.sum_duplicates()
        self.user_artist_ = _row_normalised(ua)
        plays = train.play_counts() + 1.0
        artist_total = np.bincount(self.artist_, weights=plays, minlength=a + 1)
        share = plays / artist_total[self.artist_]
        share[self.artist_ == a] = 0.0
        self.artist_share_ = share.astype(np.float32)
        self.popularity_dist_ = (plays / plays.sum()).astype(np.float32)
        self.gate_ = np.zeros((self._context_size(), len(self.components)), dtype=np.float32)
        info: dict[str, Any] = {"components": list(self.components)}
        if val is not None and val.num_sessions:
            info.update(self._fit_gates(val))
        info["seconds"] = time.perf_counter() - t0
        return info

    # -- components ---------------------------------------------------------------------------

    @staticmethod
    def _context_size() -> int:
        return 5

    def _parts(self, batch: PrefixBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every component's distribution, which are available, and the gate context.

        Shapes: B prefixes -> D float32 [K, B, S], available bool [B, K], context [B, C]
        """
        items = batch.items
        b, length = items.shape
        s, a = self.num_songs_, self.num_artists_
        rows = np.arange(b)
        known = items >= 0
        has_next = known & (self.out_degree_[np.maximum(items, 0)] > 0)
        col = length - 1 - np.argmax(has_next[:, ::-1], axis=1)
        src_ok = has_next.any(axis=1)
        src = np.where(src_ok, items[rows, col], 0)
        prev = items[:, -2] if length > 1 else np.full(b, -1)
        prev_ok = (prev >= 0) & (self.out_degree_[np.maximum(prev, 0)] > 0)
        user = batch.user
        user_ok = (user >= 0) & (user < len(self.user_plays_))
        user_ok &= self.user_plays_[np.where(user_ok, user, 0)] > 0
        last = items[:, -1]
        last_art = np.where(last >= 0, self.artist_[np.maximum(last, 0)], a)
        r, c = np.nonzero(known)
        w = PREFIX_DECAY ** (length - 1 - c)
        out = np.zeros((len(self.components), b, s), dtype=np.float32)
        avail = np.zeros((b, len(self.components)), dtype=bool)
        for k, name in enumerate(self.components):
            if name == "transition":
                out[k], avail[:, k] = _rows(self.transitions_, src, src_ok), src_ok
            elif name == "transition2":
                out[k], avail[:, k] = _rows(self.transitions_, prev, prev_ok), prev_ok
            elif name == "history":
                out[k], avail[:, k] = _rows(self.history_, user, user_ok), user_ok
            elif name == "artist":
                ok = last_art < a
                out[k] = (self.artist_[None, :] == last_art[:, None]) * self.artist_share_
                out[k][~ok] = 0.0
                avail[:, k] = ok
            elif name == "user_artist":
                dist = _rows(self.user_artist_, user, user_ok)
                out[k] = dist[:, self.artist_] * self.artist_share_
                avail[:, k] = user_ok
            elif name == "session_artist":
                pa = np.zeros((b, a + 1), dtype=np.float64)
                np.add.at(pa, (r, self.artist_[items[r, c]]), w)
                pa[:, a] = 0.0
                total = pa.sum(axis=1)
                pa /= np.maximum(total, 1e-12)[:, None]
                out[k] = pa[:, self.artist_] * self.artist_share_
                avail[:, k] = total > 0
            elif name == "session":
                ps = np.zeros((b, s), dtype=np.float64)
                np.add.at(ps, (r, items[r, c]), w)
                total = ps.sum(axis=1)
                out[k] = ps / np.maximum(total, 1e-12)[:, None]
                avail[:, k] = total > 0
            else:  # popularity
                out[k], avail[:, k] = self.popularity_dist_[None, :], True
        context = np.stack(
            [
                np.ones(b),
                np.log1p(self.out_degree_[src]) * src_ok,
                self.top_transition_[src] * src_ok,
                np.log1p(self.user_plays_[np.where(user_ok, user, 0)]) * user_ok,
                np.log1p(known.sum(axis=1)),
            ],
            axis=1,
        ).astype(np.float32)
        return out, avail, context

    @staticmethod
    def _gates(w: torch.Tensor, avail: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return torch.softmax((context @ w).masked_fill(~avail, float("-inf")), dim=1)

    def gates(self, batch: PrefixBatch) -> np.ndarray:
        """The mixture weight of each component for each prefix (rows sum to 1).

        Shapes: B prefixes -> float32 [B, K]
        """
        if self.gate_ is None:
            raise _not_fitted(self)
        _, avail, context = self._parts(batch)
        return self._gate_rows(avail, context)

    def _gate_rows(self, avail: np.ndarray, context: np.ndarray) -> np.ndarray:
        assert self.gate_ is not None
        with torch.no_grad():
            g = self._gates(
                torch.from_numpy(self.gate_), torch.from_numpy(avail), torch.from_numpy(context)
            )
        return g.numpy()

    def contributions(self, batch: PrefixBatch) -> np.ndarray:
        """Each component's share of each song's score: ``score = contributions.sum(0)``.

        Shapes: B prefixes -> float32 [K, B, S]
        """
        if self.gate_ is None:
            raise _not_fitted(self)
        parts, avail, context = self._parts(batch)
        g = self._gate_rows(avail, context)
        return parts * g.T[:, :, None]

    def score(self, batch: PrefixBatch) -> np.ndarray:
        """Shapes: B prefixes -> float32 [B, S]."""
        if self.gate_ is None or not hasattr(self, "transitions_"):
            raise _not_fitted(self)
        parts, avail, context = self._parts(batch)
        g = self._gate_rows(avail, context)
        out = np.einsum("bk,kbs->bs", g, parts, dtype=np.float32)
        return out + 1e-12 * self.popularity_[None, :]

    # -- fitting the gates --------------------------------------------------------------------

    def _fit_gates(self, val: Sessions) -> dict[str, Any]:
        torch.manual_seed(self.seed)
        every = positions(
            val, exclude_seen=False, max_positions=self.tune_positions, seed=self.seed
        )
        served = positions(
            val, exclude_seen=True, max_positions=self.tune_positions, seed=self.seed
        )
        if not len(every) or not len(served):
            return {}
        at_target, avail_t, ctx_t = [], [], []
        for batch, target in iter_batches(val, every, self.max_len, 256):
            parts, avail, context = self._parts(batch)
            at_target.append(parts[:, np.arange(len(target)), target].T)
            avail_t.append(avail)
            ctx_t.append(context)
        d = torch.from_numpy(np.concatenate(at_target))
        av = torch.from_numpy(np.concatenate(avail_t))
        cx = torch.from_numpy(np.concatenate(ctx_t))
        w = torch.zeros(cx.shape[1], len(self.components), requires_grad=True)
        opt = torch.optim.LBFGS(
            [w], lr=1.0, max_iter=100, history_size=20, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            p = (self._gates(w, av, cx) * d).sum(dim=1)
            loss = -torch.log(p + 1e-12).mean()
            loss.backward()
            return loss

        nll = float("nan")
        for _ in range(3):
            nll = float(opt.step(closure).detach())
        w0 = w.detach().clone()
        self.gate_ = w0.numpy().copy()
        info: dict[str, Any] = {"nll": nll, "positions": len(every)}
        if self.steps == 0:
            return info
        values, dup, av, cx = self._candidates(val, served)
        tried: dict[str, float] = {}
        best: tuple[float, float, np.ndarray] | None = None
        start = w0
        for tau in self.taus:  # each temperature starts from the previous one's gates
            w = self._approx_mrr(start, values, dup, av, cx, tau)
            start = torch.from_numpy(w)
            self.gate_ = w
            mrr = evaluate_sessions(
                self, val, (20,), max_positions=self.tune_positions, seed=self.seed, batch_size=256
            )["mrr@20"]
            tried[str(tau)] = mrr
            log.info("%s tau=%g: val mrr@20 %.4f", self.name, tau, mrr)
            if best is None or mrr > best[0]:
                best = (mrr, tau, w)
        assert best is not None
        self.tau, self.gate_ = best[1], best[2]
        mean = self._gate_rows(av.numpy(), cx.numpy()).mean(axis=0)
        info.update(
            tau=self.tau,
            val=tried,
            candidates=int(values.shape[1]),
            mean_gates={c: round(float(g), 4) for c, g in zip(self.components, mean, strict=True)},
        )
        return info

    def _candidates(
        self, val: Sessions, pts: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per served position: the components' values at the target (column 0) and at the
        union of every component's top ``candidates`` songs, prefix songs excluded.

        Shapes: -> values [N, C, K], duplicate-or-padding mask [N, C], available, context
        """
        k = len(self.components)
        m = min(self.candidates, self.num_songs_ - 1)
        chunks, avails, contexts = [], [], []
        width = 0
        for batch, target in iter_batches(val, pts, self.max_len, 256):
            parts, avail, context = self._parts(batch)
            b = len(target)
            parts[:, batch.seen_rows, batch.seen_cols] = 0.0
            if m >= 1:
                top = np.argpartition(-parts, m - 1, axis=2)[:, :, :m]
                cand = np.transpose(top, (1, 0, 2)).reshape(b, -1)
            else:
                cand = np.zeros((b, 0), dtype=np.int64)
            cand = np.sort(cand, axis=1)
            pad = np.zeros_like(cand, dtype=bool)
            pad[:, 1:] = cand[:, 1:] == cand[:, :-1]
            pad |= cand == target[:, None]  # the target is column 0
            cand = np.concatenate([target[:, None], cand], axis=1)
            pad = np.concatenate([np.zeros((b, 1), dtype=bool), pad], axis=1)
            vals = parts[:, np.arange(b)[:, None], cand]  # [K, B, C]
            chunks.append((np.transpose(vals, (1, 2, 0)), pad))
            avails.append(avail)
            contexts.append(context)
            width = max(width, cand.shape[1])
        n = sum(len(p) for _, p in chunks)
        values = np.zeros((n, width, k), dtype=np.float32)
        dup = np.ones((n, width), dtype=bool)
        lo = 0
        for v, p in chunks:
            values[lo : lo + len(v), : v.shape[1]] = v
            dup[lo : lo + len(v), : v.shape[1]] = p
            lo += len(v)
        return (
            torch.from_numpy(values),
            torch.from_numpy(dup),
            torch.from_numpy(np.concatenate(avails)),
            torch.from_numpy(np.concatenate(contexts)),
        )

    def _approx_mrr(
        self,
        w0: torch.Tensor,
        values: torch.Tensor,
        dup: torch.Tensor,
        avail: torch.Tensor,
        context: torch.Tensor,
        tau: float,
    ) -> np.ndarray:
        """Gates maximising the smooth MRR ``mean 1 / (1 + sum_j sigmoid((s_j - s_t) / tau))``
        over the candidate sets, from ``w0``."""
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=self.lr)
        live = ~dup[:, 1:]
        for _ in range(self.steps):
            g = self._gates(w, avail, context)
            s = torch.log(torch.bmm(values, g.unsqueeze(2)).squeeze(2) + 1e-12)
            above = torch.sigmoid((s[:, 1:] - s[:, :1]) / tau) * live
            loss = -(1.0 / (1.0 + above.sum(dim=1))).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return w.detach().numpy().copy()

    def num_parameters(self) -> int:
        return 0 if self.gate_ is None else int(self.gate_.size)
