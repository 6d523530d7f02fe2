"""Next song: the model registry, fit/compare on one split, and loading a run for serving.

:func:`load_next_song_predictor` returns a run's fitted model, pickled whole in its run
folder (no Neo4j at predict time).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gnn.core._registry import make_by_name
from gnn.graph._snapshot import GraphSnapshot
from gnn.sessions._base import NextSongPredictor, SessionModel
from gnn.sessions._baselines import SKNN, STAN, VSKNN, Markov, SessionPopularity
from gnn.sessions._data import Sessions, SessionSplit, build_sessions, session_split
from gnn.sessions._evaluate import evaluate_sessions
from gnn.sessions._hybrid import SessionHybrid
from gnn.sessions._mixture import SessionMixture
from gnn.sessions._train import SessionGNN
from spotify_engine import errors

log = logging.getLogger(__name__)


def load_next_song_predictor(
    runs_root: str | os.PathLike[str], run_id: str | None = None
) -> NextSongPredictor:
    """The fitted next-song model of a run (default: the active run of task ``session``).

    The model is read from the run folder alone (no Neo4j needed to predict).

    Raises:
        spotify_engine.errors.RunNotFound: no active session run, no such run, or a run of
            another task.
        spotify_engine.errors.ModelError: the run has no next-song model file.
    """
    from gnn.core._registry import load_checkpoint, resolve_run

    info = resolve_run(runs_root, "session", run_id)
    rid = info.run_id
    hint = "train one: spotify-engine train --task session"
    t0 = time.perf_counter()
    try:
        model = load_checkpoint(info)
    except FileNotFoundError:
        raise errors.ModelError(f"run {rid} has no saved model", hint=hint) from None
    if not isinstance(model, SessionModel):
        raise errors.ModelError(f"run {rid} does not hold a next-song model", hint=hint)
    model.run_id = rid
    log.info("loaded %s (%s) in %.2fs", model.name, rid, time.perf_counter() - t0)
    return model


SESSION_MODELS: dict[str, type[SessionModel]] = {
    "popularity": SessionPopularity,
    "markov": Markov,
    "sknn": SKNN,
    "vsknn": VSKNN,
    "stan": STAN,
    "sessiongnn": SessionGNN,
    "sessionhybrid": SessionHybrid,
    "sessionmix": SessionMixture,
}


#: The simple models a learned one has to beat (the issue's bar: best of these x 1.05).
SESSION_BASELINES = ("popularity", "markov", "sknn", "vsknn", "stan")


#: The validation metric that picks the served model.
SELECT_BY = "mrr@20"


def make_session_model(name: str, **overrides: Any) -> SessionModel:
    """A fresh next-song model by name (a key of :data:`SESSION_MODELS`)."""
    return make_by_name(SESSION_MODELS, name, "session model", **overrides)


@dataclass
class SessionExperiment:
    """Sessions of a snapshot with their time split."""

    snap: GraphSnapshot
    sessions: Sessions
    split: SessionSplit
    test_frac: float
    val_frac: float

    def part(self, phase: str) -> Sessions:
        """Sessions of ``train``, ``val`` or ``test``."""
        if phase == "train":
            return self.sessions.subset(self.split.train)
        return self.sessions.subset(self.split.target_for(phase))

    @property
    def config(self) -> dict[str, Any]:
        return {"test_frac": self.test_frac, "val_frac": self.val_frac, **self.split.describe()}


def prepare_sessions(
    snap: GraphSnapshot, test_frac: float = 0.2, val_frac: float = 0.1
) -> SessionExperiment:
    """Rebuild sessions from a snapshot and split them by a global time cut."""
    sessions = build_sessions(snap)
    split = session_split(sessions, test_frac=test_frac, val_frac=val_frac)
    return SessionExperiment(snap, sessions, split, test_frac, val_frac)


@dataclass
class SessionComparison:
    """One row per model (validation metrics prefixed ``val_``), the fitted models, runs.

    ``selection`` says which model won on validation and by how much (see
    :func:`selection_summary`); ``fit_info`` is what each model's ``fit`` returned.
    """

    table: pd.DataFrame
    models: dict[str, SessionModel]
    best: str
    run_ids: dict[str, str] = field(default_factory=dict)
    active: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    fit_info: dict[str, dict[str, Any]] = field(default_factory=dict)


def selection_summary(
    val: dict[str, float],
    test: dict[str, float] | None = None,
    *,
    metric: str,
    baselines: Sequence[str] = (),
) -> dict[str, Any]:
    """Who won on validation and by how much: the best model by ``val[name]``, the runner-up
    and the relative margin ``best / runner_up - 1``, the best baseline (a name in
    ``baselines`` other than the winner) and the winner's margin over it; with ``test``,
    the same models' test figures, reported only (they pick nothing).
    """
    if not val:
        raise ValueError("val must hold at least one model's figure (got none)")
    order = sorted(val, key=lambda m: -float(val[m]))
    best = order[0]
    out: dict[str, Any] = {"metric": metric, "best": best, "best_val": float(val[best])}

    def rel(a: float, b: float) -> float:
        return a / b - 1.0 if b > 0 else float("inf")

    if len(order) > 1:
        out.update(
            runner_up=order[1],
            runner_up_val=float(val[order[1]]),
            margin=rel(float(val[best]), float(val[order[1]])),
        )
    rivals = [m for m in order if m in baselines and m != best]
    if rivals:
        b = rivals[0]
        out.update(
            best_baseline=b,
            best_baseline_val=float(val[b]),
            margin_over_best_baseline=rel(float(val[best]), float(val[b])),
        )
    if test is not None:
        out["best_test"] = float(test[best])
        if rivals:
            out["best_baseline_test"] = float(test[rivals[0]])
    return out


def compare_session_models(
    exp: SessionExperiment,
    names: Sequence[str],
    *,
    ks: Iterable[int] = (10, 20),
    overrides: dict[str, dict[str, Any]] | None = None,
    runs_root: Path | None = None,
    activate: bool = False,
    select_by: str = SELECT_BY,
    max_positions: int | None = None,
    exclude_seen: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SessionComparison:
    """Fit, evaluate (validation and test), record and optionally activate models.

    Args:
        names: model names (see :func:`make_session_model`). A ``sessionhybrid`` listed after
            ``sessiongnn`` (same configuration) and ``markov`` reuses them instead of
            training them again; their training seconds count in its ``train_seconds``.
        overrides: per-model constructor arguments, e.g. ``{"sessiongnn": {"epochs": 3}}``.
        runs_root: record each model as a run of task ``session`` there (pickled whole).
        activate: make the best model by validation ``select_by`` the active session run.
        max_positions: evaluate a seeded sample of at most this many positions per phase.
        exclude_seen: the evaluation protocol (see ``gnn.sessions``).
    """
    ks = tuple(ks)
    if not names:
        raise ValueError("names must list at least one model (got none)")
    train, val, test = exp.part("train"), exp.part("val"), exp.part("test")
    group = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    rows: dict[str, dict[str, Any]] = {}
    models: dict[str, SessionModel] = {}
    infos: dict[str, dict[str, Any]] = {}
    for name in names:
        model = make_session_model(name, **(overrides or {}).get(name, {}))
        if progress is not None:
            progress(f"fitting {model.name}")
        if isinstance(model, SessionHybrid):
            model.adopt(models, {m: float(r["train_seconds"]) for m, r in rows.items()})
        t0 = time.perf_counter()
        fit_info = model.fit(train, val=val) or {}
        fit_s = time.perf_counter() - t0 + float(fit_info.get("reused_train_seconds", 0.0))
        if progress is not None:
            progress(f"evaluating {model.name}")
        t1 = time.perf_counter()
        vm, tm = (
            evaluate_sessions(
                model, part, ks, exclude_seen=exclude_seen, max_positions=max_positions
            )
            for part in (val, test)
        )
        eval_s = time.perf_counter() - t1
        rows[model.name] = {
            **tm,
            **{f"val_{k}": v for k, v in vm.items()},
            "train_seconds": fit_s,
            "eval_seconds": eval_s,
            "parameters": model.num_parameters(),
        }
        models[model.name] = model
        infos[model.name] = fit_info
        log.info("%s: %s", model.name, {k: round(float(v), 4) for k, v in tm.items()})
    selection = selection_summary(
        {m: float(r[f"val_{select_by}"]) for m, r in rows.items()},
        {m: float(r[select_by]) for m, r in rows.items()},
        metric=select_by,
        baselines=SESSION_BASELINES,
    )
    best = selection["best"]
    out = SessionComparison(
        pd.DataFrame.from_dict(rows, orient="index"),
        models,
        best,
        selection=selection,
        fit_info=infos,
    )
    if runs_root is not None:
        from gnn.core._registry import save_run, set_active

        for name, model in models.items():
            info = infos[name]
            config = {
                "task": "session",
                "model": name,
                "comparison": group,
                "models_compared": list(models),
                "selected_by": f"val_{select_by}",
                "selection": selection,
                "protocol": "exclude_seen" if exclude_seen else "all_positions",
                "max_positions": max_positions,
                **exp.config,
            }
            if hasattr(model, "config") and callable(model.config):
                config["hyper"] = model.config()
            run = save_run(
                model,
                root=runs_root,
                config=config,
                metrics={k: v for k, v in rows[name].items() if k != "parameters"},
                snapshot_id=exp.snap.snapshot_id(),
                train_seconds=rows[name]["train_seconds"],
                fit_info={k: v for k, v in info.items() if k != "history"},
                checkpoint=True,
                task="session",
            )
            if info.get("history"):
                (run.path / "history.json").write_text(json.dumps(info["history"], default=float))
            out.run_ids[name] = run.run_id
            model.run_id = run.run_id
        if activate:
            set_active(runs_root, out.run_ids[best], task="session")
            out.active = out.run_ids[best]
    return out
