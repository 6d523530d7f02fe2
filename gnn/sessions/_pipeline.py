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
from gnn.sessions._baselines import SKNN, Markov, SessionPopularity
from gnn.sessions._data import Sessions, SessionSplit, build_sessions, session_split
from gnn.sessions._evaluate import evaluate_sessions
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
    "sessiongnn": SessionGNN,
}


#: The validation metric that picks the served model.
SELECT_BY = "mrr@20"


def make_session_model(name: str, **overrides: Any) -> SessionModel:
    """A fresh next-song model by name (``popularity``, ``markov``, ``sknn``, ``sessiongnn``)."""
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
    """One row per model (validation metrics prefixed ``val_``), the fitted models, runs."""

    table: pd.DataFrame
    models: dict[str, SessionModel]
    best: str
    run_ids: dict[str, str] = field(default_factory=dict)
    active: str | None = None


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
        names: model names (see :func:`make_session_model`).
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
        t0 = time.perf_counter()
        fit_info = model.fit(train, val=val) or {}
        fit_s = time.perf_counter() - t0
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
    best = max(rows, key=lambda m: float(rows[m][f"val_{select_by}"]))
    out = SessionComparison(pd.DataFrame.from_dict(rows, orient="index"), models, best)
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
