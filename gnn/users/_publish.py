"""Train -> recommend -> explain -> write back: the user task end to end, in one call.

The CLI's ``train``, the demo, the API benchmark and the API tests' world all publish a run
this way, so the rows they write are built by one piece of code. The driver is handed in;
only :class:`graphdb.Writeback` talks to Neo4j.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import numpy as np

from gnn.core._recommender import Recommender
from gnn.graph._data import TrainData
from gnn.graph._export import Progress
from gnn.users._explained import (
    Explained,
    explainable,
    recommend_and_explain,
    similar_songs,
    writeback_rows,
)
from gnn.users._pipeline import Experiment, TrainResult, make_recommender, train_model
from graphdb import RecommendationRow, Writeback
from spotify_engine.errors import ModelError


@dataclass
class WriteBackResult:
    """What one write-back wrote, and what it was computed from."""

    recommendations: int
    evidence: int
    similar: int
    affinity: int
    explain_seconds: float
    write_seconds: float
    explained: Explained
    full: TrainData
    #: Wall seconds of the recommendations with their evidence, computed and written (the
    #: writes overlap the computing), before ``SIMILAR_TO`` and ``AFFINITY``.
    recommendations_seconds: float = 0.0


@dataclass
class Published:
    """A trained, registered run and (when asked) its write-back."""

    train: TrainResult
    writeback: WriteBackResult | None


def _joined(parts: list[Explained]) -> Explained:
    """One :class:`Explained` of consecutive chunks of users."""
    return Explained(
        users=np.concatenate([p.users for p in parts]),
        songs=np.concatenate([p.songs for p in parts]),
        scores=np.concatenate([p.scores for p in parts]),
        explanations=[e for p in parts for e in p.explanations],
        method=parts[0].method,
    )


def _quiet(_phase: str, _done: int, _total: int) -> None:
    return None


def run_max_per_artist(fit_info: dict[str, Any] | None) -> int | None:
    """The cap a run chose on validation (``fit_info["diversity"]``; None: none chosen)."""
    cap = ((fit_info or {}).get("diversity") or {}).get("max_per_artist")
    return None if cap is None else int(cap)


def write_back(
    driver: neo4j.Driver,
    database: str,
    rec: Recommender,
    exp: Experiment,
    run_id: str,
    *,
    users: np.ndarray | None = None,
    k: int = 10,
    progress: Progress | None = None,
    max_per_artist: int | None = None,
    chunk_users: int = 2_000,
) -> WriteBackResult:
    """Recommend for ``users`` (default: all) on the full history, explain, and write the
    recommendations with their evidence, ``SIMILAR_TO``, ``AFFINITY`` and the ``ModelRun``.

    ``chunk_users`` users at a time: their rows are written (in a background thread) while
    the next chunk's are computed. ``explain_seconds`` sums the computing, ``write_seconds``
    is the rest of the wall time (the writes the computing did not hide, and ``SIMILAR_TO``).

    ``max_per_artist``: at most that many songs per artist in a list (the run's cap chosen on
    validation, :func:`run_max_per_artist`; default none).

    Graph models are explained by gradients, EASE and ItemKNN exactly (see
    ``gnn.users._explained``); only evidence that holds in the graph is written, and
    ``AFFINITY`` is each user's share of plays per genre.

    ``progress(phase, done, total)`` is called with the phases ``"recommend + explain"`` and
    ``"write back"``.
    """
    report = progress or _quiet
    full = exp.full()
    chosen = np.arange(exp.snap.num_users) if users is None else np.asarray(users)
    parts: list[Explained] = []
    affinity: list[tuple[str, str, float, int]] = []
    explain_s = 0.0

    def chunks() -> Iterator[list[RecommendationRow]]:
        """Rows of ``chunk_users`` users at a time, computed while the previous are written."""
        nonlocal explain_s
        for lo in range(0, max(len(chosen), 1), chunk_users):  # once when there are none
            t0 = time.perf_counter()
            part = recommend_and_explain(
                rec, full, chosen[lo : lo + chunk_users], k=k, max_per_artist=max_per_artist
            )
            rows, aff = writeback_rows(exp.snap, part)
            explain_s += time.perf_counter() - t0
            parts.append(part)
            affinity.extend(aff)
            report("recommend + explain", min(lo + chunk_users, len(chosen)), len(chosen))
            yield rows

    t1 = time.perf_counter()
    wb = Writeback(
        driver,
        database,
        run_id=run_id,
        model=rec.name,
        progress=lambda _p, done, total: report("write back", done, total),
    )
    res = wb.recommendations_from(chunks(), users=len(chosen))
    recs_s = time.perf_counter() - t1
    wb.progress = _quiet
    similar = similar_songs(rec, full, k=10)
    n_sim = wb.similar_songs(similar)
    n_aff = wb.affinities(affinity)
    wb.record_run({"k": k, "max_per_artist": max_per_artist})
    return WriteBackResult(
        recommendations=res.recommendations,
        evidence=res.evidence,
        similar=n_sim,
        affinity=n_aff,
        explain_seconds=explain_s,
        write_seconds=time.perf_counter() - t1 - explain_s,
        explained=_joined(parts),
        full=full,
        recommendations_seconds=recs_s,
    )


def train_and_write_back(
    exp: Experiment,
    model: str,
    *,
    runs_root: Path,
    driver: neo4j.Driver | None = None,
    database: str = "neo4j",
    overrides: dict[str, Any] | None = None,
    users: np.ndarray | None = None,
    k: int = 10,
    activate: bool = True,
    progress: Progress | None = None,
) -> Published:
    """Fit ``model`` on the training period (early stopping on validation), test, register
    the run (activated unless ``activate=False``) and, given a driver, write it back.

    ``progress`` sees the phase ``"train"`` (0 of 1, then 1 of 1) and then the write-back's.

    Raises:
        ModelError: given a driver, ``model`` cannot be explained (checked before training:
            only explainable runs are written back, so every recommendation in the graph has
            true evidence).
    """
    if driver is not None and not explainable(make_recommender(model, **(overrides or {}))):
        raise ModelError(
            f"{model} cannot be explained, so its recommendations cannot be written back",
            hint="write back enhancedgat, ease or itemknn, or train with --no-writeback",
        )
    report = progress or _quiet
    report("train", 0, 1)
    res = train_model(exp, model, runs_root=runs_root, overrides=overrides, activate=activate)
    report("train", 1, 1)
    wb = None
    if driver is not None:
        wb = write_back(
            driver,
            database,
            res.recommender,
            exp,
            res.run.run_id,
            users=users,
            k=k,
            progress=progress,
        )
    return Published(train=res, writeback=wb)
