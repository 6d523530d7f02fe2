"""The user task's steps: the model registry, a split experiment, train/test/register, compare.

Nothing here opens a driver: snapshots come in (exported by the caller) and runs go to the
registry on disk.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnn.core._harness import compare, evaluate
from gnn.core._plots import plot_training_curves
from gnn.core._recommender import Recommender
from gnn.core._registry import (
    RunInfo,
    load_checkpoint,
    make_by_name,
    new_run_id,
    save_run,
    set_active,
)
from gnn.graph._data import Split, TrainData, build_train_data, relevant_items, temporal_split
from gnn.graph._snapshot import GraphSnapshot, load_snapshot, save_snapshot
from gnn.users._baselines import EASE, ItemKNN, LinearBlend, Oracle, Popularity, RP3beta
from gnn.users._diversity import choose_cap
from gnn.users._hybrid import TasteHybrid
from gnn.users._recommenders import (
    BasicGATRecommender,
    EnhancedGATRecommender,
    GNNConfig,
    LightGCNRecommender,
    _GNNRecommender,
)
from spotify_engine.errors import ModelError

log = logging.getLogger(__name__)


MODELS: dict[str, Callable[..., Recommender]] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "rp3beta": RP3beta,
    "easerp3": LinearBlend,
    "hybrid": TasteHybrid,
    "lightgcn": LightGCNRecommender,
    "basicgat": BasicGATRecommender,
    "enhancedgat": EnhancedGATRecommender,
}


GNN_MODELS = ("lightgcn", "basicgat", "enhancedgat")


SNAPSHOT_FILE = "snapshot.npz"


def make_recommender(name: str, **overrides: Any) -> Recommender:
    """A fresh recommender by registry name (``popularity``, ``ease``, ``enhancedgat`` ...)."""
    return make_by_name(MODELS, name, "model", **overrides)


@dataclass
class Experiment:
    """A snapshot with its temporal split and the views models are fitted and ranked on."""

    snap: GraphSnapshot
    split: Split
    train: TrainData
    val_relevant: list[np.ndarray]
    test_frac: float
    val_frac: float

    @property
    def config(self) -> dict[str, Any]:
        return {
            "split": "per-user temporal",
            "test_frac": self.test_frac,
            "val_frac": self.val_frac,
            "snapshot_id": self.snap.snapshot_id(),
            "users": self.snap.num_users,
            "songs": self.snap.num_songs,
            "plays": self.snap.num_plays,
        }

    def observed(self, phase: str) -> TrainData:
        return build_train_data(self.snap, self.split.observed_for(phase))

    def full(self) -> TrainData:
        """Every play: what serving and write-back rank with."""
        return build_train_data(self.snap, np.ones(self.snap.num_plays, dtype=bool))


def prepare(snap: GraphSnapshot, *, test_frac: float = 0.2, val_frac: float = 0.1) -> Experiment:
    split = temporal_split(snap, test_frac=test_frac, val_frac=val_frac)
    return Experiment(
        snap=snap,
        split=split,
        train=build_train_data(snap, split.train),
        val_relevant=relevant_items(snap, split, "val"),
        test_frac=test_frac,
        val_frac=val_frac,
    )


def oracle_from_truth(snap: GraphSnapshot, folder: Path) -> Oracle | None:
    """The planted-truth oracle for generator data (``truth.json`` + songs tables in folder)."""
    from ingest import load_truth, oracle_scores

    folder = Path(folder)
    if not (folder / "truth.json").exists() or not (folder / "songs.parquet").exists():
        return None
    truth = load_truth(folder / "truth.json")
    songs = pd.read_parquet(folder / "songs.parquet")
    song_genres = pd.read_parquet(folder / "song_genres.parquet")
    known_users = [u for u in snap.user_ids if u in truth.users]
    if len(known_users) != snap.num_users:
        return None
    prefs = oracle_scores(
        truth, list(snap.user_ids), list(snap.song_ids), songs=songs, song_genres=song_genres
    )
    return Oracle(prefs.astype(np.float32))


@dataclass
class TrainResult:
    """A fitted, tested, recorded run; ``val_metrics`` only when asked for (selection)."""

    recommender: Recommender
    run: RunInfo
    metrics: dict[str, Any]
    fit_info: dict[str, Any]
    seconds: float
    val_metrics: dict[str, Any] | None = None


def train_model(
    exp: Experiment,
    name: str,
    *,
    runs_root: Path,
    overrides: dict[str, Any] | None = None,
    activate: bool = True,
    validate: bool = False,
    recommender: Recommender | None = None,
) -> TrainResult:
    """Fit on the training period (early stopping on validation), test, record the run.

    Args:
        validate: also measure the validation period (``val_metrics``, and ``validation`` in
            the run's ``fit_info``): what :func:`train_and_select` chooses by; and choose the
            run's ``max_per_artist`` on it (``diversity`` in ``fit_info``, see
            :func:`gnn.users._diversity.choose_cap`).
        recommender: an unfitted model to use instead of ``make_recommender(name)`` (its run
            records ``name`` but cannot be rebuilt by :func:`load_trained`).
    """
    overrides = dict(overrides or {})
    rec = recommender if recommender is not None else make_recommender(name, **overrides)
    t0 = time.perf_counter()
    info = dict(rec.fit(exp.train, val=(exp.train, exp.val_relevant)) or {})
    seconds = time.perf_counter() - t0
    val_metrics = None
    if validate:
        val_metrics = evaluate(rec, exp.snap, exp.split, "val")
        info["validation"] = val_metrics
        # the per-artist cap of this run's lists, chosen on validation (gnn.users._diversity)
        info["diversity"] = choose_cap(rec, exp.observed("val"), exp.val_relevant)
    metrics = evaluate(rec, exp.snap, exp.split, "test")
    config = {"model": rec.name, "registry_name": name, "overrides": overrides, **exp.config}
    if isinstance(rec, _GNNRecommender):
        config["gnn"] = {k: v for k, v in rec.config.__dict__.items() if k != "model_kwargs"}
    run = save_run(
        rec,
        root=runs_root,
        config=config,
        metrics=metrics,
        snapshot_id=exp.snap.snapshot_id(),
        train_seconds=seconds,
        fit_info={k: v for k, v in (info or {}).items() if k != "history"},
        run_id=new_run_id(rec.name),
    )
    save_snapshot(exp.snap, run.path / SNAPSHOT_FILE)
    history = (info or {}).get("history")
    if history:
        curves = {k: v for k, v in history.items() if k in ("loss", "val_ndcg", "val_recall")}
        plot_training_curves(
            curves, run.path / "training_curves.png", title=f"{rec.name} {run.run_id}"
        )
        (run.path / "history.json").write_text(json.dumps(history, default=float))
    if activate:
        set_active(runs_root, run.run_id)
    return TrainResult(rec, run, metrics, info, seconds, val_metrics)


#: The user task's baselines (what a served model is measured against).
USER_BASELINES = ("popularity", "itemknn", "ease", "rp3beta")
#: What ``spotify-engine train --model best`` fits: every explainable model, so the winner can
#: always be written back with its evidence (``easerp3`` and ``hybrid`` reuse the fitted EASE^R
#: and RP3beta).
SELECT_CANDIDATES = ("enhancedgat", "ease", "rp3beta", "itemknn", "easerp3", "hybrid")
#: The validation metric the served user model is chosen by.
SELECT_BY = "ndcg@10"


def selection_summary(
    val: dict[str, float],
    test: dict[str, float] | None = None,
    *,
    metric: str = SELECT_BY,
    baselines: Sequence[str] = USER_BASELINES,
) -> dict[str, Any]:
    """Who won on validation and by how much: the best by ``val[name]`` (ties: the first
    listed), the runner-up and ``margin = best / runner_up - 1``, the best baseline other than
    the winner and the margin over it; ``test`` figures are reported only, they pick nothing.

    The same keys as ``gnn.sessions.selection_summary``, so the CLI prints one winner line.
    """
    if not val:
        raise ValueError("val must hold at least one model's figure (got none)")
    order = sorted(val, key=lambda m: -float(np.nan_to_num(val[m], nan=-np.inf)))
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
        out.update(
            best_baseline=rivals[0],
            best_baseline_val=float(val[rivals[0]]),
            margin_over_best_baseline=rel(float(val[best]), float(val[rivals[0]])),
        )
    if test is not None:
        out["best_test"] = float(test[best])
        if rivals:
            out["best_baseline_test"] = float(test[rivals[0]])
    return out


#: What stands in for a model the harness skips because it cannot fit in memory (issue 15):
#: sparse, top-k neighbour models whose memory grows with the catalogue, not its square.
STAND_INS: dict[str, str] = {"ease": "rp3beta", "easerp3": "rp3beta", "hybrid": "rp3beta"}
#: Memory kept free beside a model's own estimate (the data, scoring batches, the rest).
MEMORY_RESERVE = 2 * 2**30


def memory_budget() -> int:
    """Bytes a model may take: the memory available now (``psutil``) less :data:`MEMORY_RESERVE`."""
    import psutil

    return max(0, int(psutil.virtual_memory().available) - MEMORY_RESERVE)


def cannot_fit(rec: Recommender, train: TrainData, budget: int) -> str | None:
    """One line saying why ``rec`` cannot be fitted on ``train`` within ``budget`` bytes, or
    None when it can (or does not say what it needs: only models with ``memory_bytes``, such as
    EASE^R's dense item-item matrix, are checked)."""
    need = getattr(rec, "memory_bytes", None)
    if not callable(need):
        return None
    n = int(need(train))
    if n <= budget:
        return None
    return (
        f"{rec.name} skipped: it needs about {_size(n)} for {train.num_songs:,} songs, "
        f"its memory budget is {_size(budget)}"
    )


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


@dataclass
class UserSelection:
    """Every candidate's recorded run, and which one won on validation (``selection``)."""

    results: dict[str, TrainResult]
    selection: dict[str, Any]

    @property
    def skipped(self) -> dict[str, str]:
        """Candidates left out (they cannot fit in memory, or no training budget was left for
        them), with the one-line reason."""
        return dict(self.selection.get("skipped") or {})

    @property
    def best(self) -> TrainResult:
        return self.results[self.selection["best"]]

    def table(self) -> pd.DataFrame:
        """One row per candidate: test metrics, ``val_`` validation ones, seconds, params."""
        rows = {
            name: {
                **r.metrics,
                **{f"val_{k}": v for k, v in (r.val_metrics or {}).items()},
                "train_seconds": r.seconds,
                "parameters": r.recommender.num_parameters(),
            }
            for name, r in self.results.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index")


def train_and_select(
    exp: Experiment,
    names: Sequence[str | Recommender] = SELECT_CANDIDATES,
    *,
    runs_root: Path,
    overrides: dict[str, dict[str, Any]] | None = None,
    activate: bool = True,
    select_by: str = SELECT_BY,
    progress: Callable[[str], None] | None = None,
    memory: int | None = None,
    budget_s: float | None = None,
) -> UserSelection:
    """Fit, validate, test and record every candidate; activate the best on validation.

    A candidate that cannot fit in ``memory`` bytes (default :func:`memory_budget`; see
    :func:`cannot_fit`) is skipped with a one-line reason (logged, and in
    ``selection["skipped"]``) and its scalable stand-in (:data:`STAND_INS`) is fitted instead
    when it is not a candidate already (issue 15: EASE^R's dense matrix at 200,000 songs).

    With ``budget_s``, the whole selection aims to end within that many seconds (issue 18:
    five minutes at 2,000 users / 20,000 songs on two cores): the trained-by-epochs models
    (the GNNs) are fitted after the others, each within what is left of the budget less
    :data:`BUDGET_RESERVE` of it (kept for its own evaluation); one for which nothing is left
    is skipped with a one-line reason. The other candidates are fitted whole whatever the
    budget, with the faster settings of :data:`BUDGET_OVERRIDES` unless ``overrides`` says
    otherwise. The table keeps the listed order.

    The choice reads the validation period only (the plays after training, before the test
    period); test figures are recorded and reported, never compared. The winner's run gets a
    ``selection.json`` with the summary.

    Args:
        names: registry names, or unfitted recommenders (recorded under their ``name``). A
            model with an ``adopt(fitted, seconds)`` method (``easerp3``) is handed the models
            fitted before it, to reuse.
        overrides: per-model constructor arguments, e.g. ``{"enhancedgat": {"epochs": 5}}``.
        activate: make the winner the active user run (default True).
        select_by: a key of the harness's metrics (default ``"ndcg@10"``).
        progress: called with each model's name before it is fitted.
        budget_s: the selection's time budget in seconds (default None: none).
    """
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"budget_s must be > 0 seconds, or None (got {budget_s})")
    if not names:
        raise ValueError("names must list at least one model (got none)")
    started = time.perf_counter()
    budget = memory_budget() if memory is None else int(memory)
    results: dict[str, TrainResult] = {}
    skipped: dict[str, str] = {}
    listed = [e.name if isinstance(e, Recommender) else str(e) for e in names]
    todo = list(names)
    if budget_s is not None:  # the GNNs last: they train within what the others leave
        todo.sort(key=_trains_by_epochs)
    while todo:
        entry = todo.pop(0)
        name = entry.name if isinstance(entry, Recommender) else str(entry)
        if name in results or name in skipped:
            raise ValueError(f"model {name!r} is listed twice")
        args = (overrides or {}).get(name) or {}
        if budget_s is not None:
            args = {**BUDGET_OVERRIDES.get(name, {}), **args}
        rec = entry if isinstance(entry, Recommender) else make_recommender(name, **args)
        reason = cannot_fit(rec, exp.train, budget)
        if reason is not None:
            skipped[name] = reason
            log.warning("%s", reason)
            stand_in = STAND_INS.get(name)
            if stand_in and stand_in not in listed and stand_in not in todo:
                todo.append(stand_in)
            continue
        if budget_s is not None and isinstance(rec, _GNNRecommender):
            spent = time.perf_counter() - started
            left = budget_s * (1 - BUDGET_RESERVE) - spent
            if left <= 0:
                skipped[name] = (
                    f"{name} skipped: the other candidates took {spent:.0f} s of the "
                    f"{budget_s:.0f} s training budget; a larger budget trains it"
                )
                log.warning("%s", skipped[name])
                continue
            own = rec.config.max_seconds
            rec.config = dataclasses.replace(
                rec.config, max_seconds=min(left, math.inf if own is None else own)
            )
        adopt = getattr(rec, "adopt", None)
        if callable(adopt):
            adopt(
                {n: r.recommender for n, r in results.items()},
                {n: r.seconds for n, r in results.items()},
            )
        if progress is not None:
            progress(name)
        results[name] = train_model(
            exp,
            name,
            runs_root=runs_root,
            overrides=args,
            activate=False,
            validate=True,
            recommender=rec,
        )
    if not results:
        raise ModelError(
            "no user-task candidate fits in memory: " + "; ".join(skipped.values()),
            hint="add a sparse model such as rp3beta or itemknn to the candidates",
        )
    results = {n: results[n] for n in sorted(results, key=_listed_first(listed))}
    val = {n: float(r.val_metrics[select_by]) for n, r in results.items() if r.val_metrics}
    test = {n: float(r.metrics[select_by]) for n, r in results.items()}
    selection = selection_summary(val, test, metric=select_by)
    selection["runs"] = {n: r.run.run_id for n, r in results.items()}
    if skipped:
        selection["skipped"] = skipped
    if budget_s is not None:
        selection["budget"] = {"seconds": budget_s, "spent": time.perf_counter() - started}
    winner = results[selection["best"]]
    (winner.run.path / "selection.json").write_text(json.dumps(selection, indent=2))
    if activate:
        set_active(runs_root, winner.run.run_id)
    log.info("user task: %s wins on validation %s", selection["best"], select_by)
    return UserSelection(results, selection)


#: Constructor arguments ``train_and_select`` gives a candidate under a time budget. EASE^R
#: tunes its ``l`` on an EASE^R of the 5,000 most-listened songs, then fits the chosen ``l`` on
#: every song: one 20,000 x 20,000 inverse instead of three (``benchmarks/ease_tuning.py``:
#: the full grid's ``l`` on the generator's snapshots of seeds 42-44 and the Last.fm-shaped
#: one of seed 42).
BUDGET_OVERRIDES: dict[str, dict[str, Any]] = {"ease": {"tune_items": 5000}}
#: Share of ``train_and_select``'s time budget kept for the last GNN's own evaluation
#: (validation, the per-artist cap, test; about 20 s at 2,000 users / 20,000 songs).
BUDGET_RESERVE = 0.1


def _trains_by_epochs(entry: str | Recommender) -> bool:
    """Whether a candidate is a GNN (trained epoch by epoch, within a time budget)."""
    if isinstance(entry, Recommender):
        return isinstance(entry, _GNNRecommender)
    cls = MODELS.get(str(entry))
    return isinstance(cls, type) and issubclass(cls, _GNNRecommender)


def _listed_first(listed: list[str]) -> Callable[[str], int]:
    """Sort key: a name's place in ``listed`` (stand-ins, not listed, after them)."""
    return lambda n: listed.index(n) if n in listed else len(listed)


#: Hyper-parameters a baseline chose on validation, as recorded in its ``fit_info``: a rebuilt
#: run refits with them instead of searching its grid again (on a large graph that search was
#: minutes of an API start; issue 15).
_CHOSEN: dict[str, tuple[str, ...]] = {
    "ease": ("l2",),
    "rp3beta": ("alpha", "beta"),
    "hybrid": ("weights", "ease_l2", "rp3_alpha", "rp3_beta"),
}


def _refit_args(name: str, run: RunInfo) -> dict[str, Any]:
    """The run's constructor overrides with its validation-chosen values in place of grids."""
    if name in GNN_MODELS:
        return {}
    args = dict(run.config.get("overrides") or {})
    for key in _CHOSEN.get(name, ()):
        if run.fit_info.get(key) is not None:
            args[key] = run.fit_info[key]
    return args


def load_trained(run: RunInfo) -> tuple[Recommender, GraphSnapshot]:
    """Rebuild a run's recommender from its checkpoint and its training snapshot.

    Runs recorded by ``train_model`` carry their snapshot; runs that only record a comparison
    (``models compare``) do not, and cannot be served.
    """
    path = run.path / SNAPSHOT_FILE
    if not path.exists():
        raise ModelError(
            f"run {run.run_id} has no training snapshot, so it cannot be rebuilt",
            hint="train a servable run with: spotify-engine train",
        )
    snap = load_snapshot(path)
    exp = prepare(
        snap, test_frac=run.config.get("test_frac", 0.2), val_frac=run.config.get("val_frac", 0.1)
    )
    name = run.config.get("registry_name", run.model)
    rec = make_recommender(name, **_refit_args(name, run))
    if isinstance(rec, _GNNRecommender):
        gnn_cfg = run.config.get("gnn") or {}
        fields = GNNConfig.__dataclass_fields__
        rec.config = GNNConfig(
            **{
                k: (tuple(v) if isinstance(v, list) else v)
                for k, v in gnn_cfg.items()
                if k in fields
            }
        )
        rec.model = rec.build_model(exp.train)
        rec.model.load_state_dict(load_checkpoint(run))
        rec.model.eval()
    else:
        rec.fit(exp.train, val=(exp.train, exp.val_relevant))
    return rec, snap


def compare_models(
    exp: Experiment,
    names: Sequence[str],
    *,
    oracle: Oracle | None = None,
    runs_root: Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every model through the harness's :func:`gnn.core._harness.compare`, one at a time (for
    progress), on the experiment's split; the oracle last, never recorded as a run. A model
    that cannot fit in the memory available (:func:`cannot_fit`) is left out with its one-line
    reason in ``df.attrs["skipped"]``."""
    entries: list[tuple[str, Recommender]] = []
    skipped: dict[str, str] = {}
    budget = memory_budget()
    for n in names:
        rec = make_recommender(n, **(overrides or {}).get(n, {}))
        reason = cannot_fit(rec, exp.train, budget)
        if reason is None:
            entries.append((n, rec))
        else:
            skipped[n] = reason
            log.warning("%s", reason)
    if oracle is not None:
        entries.append(("oracle", oracle))
    frames = []
    for label, model in entries:
        if progress:
            progress(label)
        root = runs_root if label != "oracle" else None
        frames.append(
            compare({label: model}, exp.snap, exp.split, registry_root=root, config=exp.config)
        )
    df = pd.concat(frames).rename(
        columns={"fit_seconds": "train_seconds", "num_parameters": "parameters"}
    )
    if "oracle" in df.index:
        df["ndcg@10_of_oracle"] = df["ndcg@10"] / df.loc["oracle", "ndcg@10"]
    df.attrs["skipped"] = skipped
    return df
