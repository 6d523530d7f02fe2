"""One evaluation harness for every model: fit on train, rank everything, score the lists.

Protocol (see ``gnn.graph._data``): models are fitted on the training view; validation ranks with the
training view as observed history, test with training + validation. Candidates are all songs
the user has not played in the observed history (full ranking, no sampled negatives); relevant
songs are those played in the target period but never before. Only users with at least one
relevant song are evaluated; the result says how many.

Metric keys (k in ``ks``): ``recall@k``, ``ndcg@k``, ``hit_rate@k``, ``mrr@k``,
``coverage@k``, ``diversity@k`` (intra-list genre diversity), ``novelty@k`` (bits, not in
[0, 1]), plus ``n_users`` (evaluated) and ``n_users_skipped`` (no relevant song).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gnn.core._metrics import (
    catalogue_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    recall_at_k,
)
from gnn.core._recommender import Recommender, check_users
from gnn.graph._data import Split, TrainData, build_train_data, genre_multi_hot, relevant_items
from gnn.graph._snapshot import GraphSnapshot

log = logging.getLogger(__name__)


ACCURACY = ("recall", "ndcg", "hit_rate", "mrr")


BEYOND = ("coverage", "diversity", "novelty")


def metric_keys(ks: Iterable[int]) -> list[str]:
    """The metric names :func:`evaluate` reports for cut-offs ``ks`` (counts excluded)."""
    return [f"{m}@{k}" for k in ks for m in (*ACCURACY, *BEYOND)]


def _check_ks(ks: Iterable[int], num_songs: int) -> tuple[int, ...]:
    out = tuple(int(k) for k in ks)
    if not out:
        raise ValueError("ks must name at least one cut-off (got none)")
    for k in out:
        if not 1 <= k <= num_songs:
            raise ValueError(f"every k must be 1..{num_songs} (got {k})")
    return out


def evaluate_view(
    model: Recommender,
    observed: TrainData,
    relevant: Sequence[np.ndarray],
    ks: Iterable[int] = (10, 20),
    *,
    users: np.ndarray | None = None,
    batch_size: int = 1024,
    beyond_accuracy: bool = True,
) -> dict[str, float]:
    """Rank with ``observed`` as history and score the lists against ``relevant``.

    The building block of :func:`evaluate`, also meant for early stopping inside ``fit``
    (``val = (observed, relevant)``).

    Args:
        model: a fitted recommender.
        observed: the observed view (history excluded from the candidates).
        relevant: relevant songs per user, one array for every user of the snapshot.
        ks: cut-offs (default ``(10, 20)``); the model is asked once for ``max(ks)``.
        users: restrict to these user indices (default all); users without a relevant song
            are always skipped.
        batch_size: users per scoring batch (default 1024).
        beyond_accuracy: also compute coverage, diversity and novelty (default True).
    """
    ks = _check_ks(ks, observed.num_songs)
    if len(relevant) != observed.num_users:
        raise ValueError(
            f"relevant must have one entry per user: {observed.num_users} (got {len(relevant)})"
        )
    pool = (
        np.arange(observed.num_users)
        if users is None
        else np.unique(check_users(users, observed.num_users))
    )
    has_rel = np.array([len(relevant[int(u)]) > 0 for u in pool], dtype=np.bool_)
    eval_users = pool[has_rel]
    out: dict[str, float] = {
        "n_users": int(len(eval_users)),
        "n_users_skipped": int(len(pool) - has_rel.sum()),
    }
    if len(eval_users) == 0:
        log.warning("no user with a relevant song: metrics are NaN")
        for key in metric_keys(ks) if beyond_accuracy else _accuracy_keys(ks):
            out[key] = float("nan")
        return out
    recs, _ = model.recommend(eval_users, max(ks), observed, batch_size=batch_size)
    rel = [relevant[u] for u in eval_users]
    fns = {"recall": recall_at_k, "ndcg": ndcg_at_k, "hit_rate": hit_rate_at_k, "mrr": mrr_at_k}
    for k in ks:
        for name, fn in fns.items():
            out[f"{name}@{k}"] = float(np.mean(fn(recs, rel, k)))
    if beyond_accuracy:
        song_genre, _ = genre_multi_hot(observed.snapshot)
        popularity = np.asarray(observed.matrix.sum(axis=0)).ravel()
        for k in ks:
            out[f"coverage@{k}"] = catalogue_coverage(recs, observed.num_songs, k)
            out[f"diversity@{k}"] = float(np.nanmean(intra_list_diversity(recs, song_genre, k)))
            out[f"novelty@{k}"] = float(np.nanmean(novelty(recs, popularity, k)))
    return out


def _accuracy_keys(ks: Iterable[int]) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in ACCURACY]


def evaluate(
    model: Recommender,
    snap: GraphSnapshot,
    split: Split,
    phase: str = "test",
    ks: Iterable[int] = (10, 20),
    users: np.ndarray | None = None,
    batch_size: int = 1024,
    *,
    observed: TrainData | None = None,
) -> dict[str, float]:
    """Evaluate a fitted model on ``phase`` ("val" or "test") of a split.

    Args:
        observed: the observed view for ``phase`` if already built (saves rebuilding it);
            default ``build_train_data(snap, split.observed_for(phase))``.

    Returns:
        ``{metric@k: value, "n_users": evaluated, "n_users_skipped": without relevant song}``.
    """
    mask = split.observed_for(phase)
    if observed is None:
        observed = build_train_data(snap, mask)
    elif observed.snapshot is not snap or not np.array_equal(observed.play_mask, mask):
        raise ValueError(f"observed view does not match the {phase!r} observed plays of the split")
    relevant = relevant_items(snap, split, phase)
    return evaluate_view(model, observed, relevant, ks, users=users, batch_size=batch_size)


class _PeakRSS:
    """Peak resident memory of this process while the block runs (sampled by a thread)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss(self) -> int:
        try:
            import psutil

            return int(psutil.Process(os.getpid()).memory_info().rss)
        except ImportError:  # pragma: no cover - psutil is a dependency
            import resource

            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> _PeakRSS:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._rss())


def compare(
    models: Sequence[Recommender] | Mapping[str, Recommender],
    snap: GraphSnapshot,
    split: Split,
    ks: Iterable[int] = (10, 20),
    *,
    phase: str = "test",
    batch_size: int = 1024,
    users: np.ndarray | None = None,
    registry_root: str | os.PathLike[str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Fit every model on the training view and evaluate all of them the same way.

    Each model is fitted on ``build_train_data(snap, split.train)`` with
    ``val=(training view, relevant_items(snap, split, "val"))`` and evaluated on ``phase``.

    Args:
        models: recommenders, or ``{label: recommender}``; labels default to ``model.name``.
        registry_root: if given, each fitted model is also recorded as a run there
            (see ``gnn.core._registry.save_run``).
        config: extra configuration stored with every run (e.g. split fractions).

    Returns:
        One row per model, indexed by label: ``fit_seconds``, ``eval_seconds``,
        ``num_parameters``, ``peak_rss_mb`` (process peak during fit and evaluation, sampled),
        ``n_users`` and every metric of :func:`evaluate`.
    """
    ks = _check_ks(ks, snap.num_songs)
    items = list(models.items()) if isinstance(models, Mapping) else [(m.name, m) for m in models]
    labels = [label for label, _ in items]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be unique (got {labels})")
    train = build_train_data(snap, split.train)
    val = (train, relevant_items(snap, split, "val"))
    observed = train if phase == "val" else build_train_data(snap, split.observed_for(phase))
    relevant = relevant_items(snap, split, phase)
    rows: list[dict[str, Any]] = []
    for label, model in items:
        log.info("fitting %s", label)
        with _PeakRSS() as mem:
            t0 = time.perf_counter()
            fit_info = model.fit(train, val=val) or {}
            fit_seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            metrics = evaluate_view(
                model, observed, relevant, ks, users=users, batch_size=batch_size
            )
            eval_seconds = time.perf_counter() - t1
        row: dict[str, Any] = {
            "model": label,
            "fit_seconds": fit_seconds,
            "eval_seconds": eval_seconds,
            "num_parameters": int(model.num_parameters()),
            "peak_rss_mb": mem.peak / 2**20,
            **metrics,
        }
        if registry_root is not None:
            from gnn.core._registry import save_run

            info = save_run(
                model,
                root=registry_root,
                config={"label": label, "phase": phase, "ks": list(ks), **dict(config or {})},
                metrics=metrics,
                snapshot_id=snap.snapshot_id(),
                train_seconds=fit_seconds,
                fit_info=fit_info,
            )
            row["run_id"] = info.run_id
        log.info("%s: %s", label, {k: round(v, 4) for k, v in metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
