"""A file-system registry of trained models: one directory per run, plus an active pointer.

Layout under the run root (default ``./runs``)::

    runs/
      ACTIVE                                  run id of the user-recommendation model the API serves
      ACTIVE-session, ACTIVE-playlist         the same for the next-song and playlist tasks
      20261126-153000-enhancedgat-1a2b3c/
        config.json                           hyper-parameters and split settings
        metrics.json                          evaluation metrics
        run.json                              model name, snapshot_id, created_at,
                                              num_parameters, train_seconds, checkpoint, fit info
        model.pt | model.pkl                  checkpoint (optional)

Torch models (an ``nn.Module``, or a recommender holding one as ``.module`` or ``.model``) are
saved as a ``state_dict`` with ``torch.save``; other models only when asked (pickle). A run is
written to a temporary directory and renamed into place, so a reader never sees half a run.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

from spotify_engine.errors import RunNotFound

T = TypeVar("T")
log = logging.getLogger(__name__)


DEFAULT_ROOT = Path("runs")


ACTIVE_FILE = "ACTIVE"


#: The recommendation tasks a run can serve; each has its own active pointer.
TASKS = ("user", "session", "playlist")


_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z0-9_]+-[0-9a-f]{6}$")


@dataclass
class RunInfo:
    """What the registry knows about one run.

    Attributes:
        run_id: ``YYYYmmdd-HHMMSS-<model>-<6 hex>``.
        path: the run directory.
        model: model name (``Recommender.name``).
        created_at: ISO-8601 UTC timestamp.
        snapshot_id: ``GraphSnapshot.snapshot_id()`` of the training data, if known.
        num_parameters: learned parameter count.
        train_seconds: wall time of ``fit``, if known.
        checkpoint: checkpoint file, or None.
        config: contents of ``config.json``.
        metrics: contents of ``metrics.json``.
        fit_info: what ``fit`` returned (epochs, curves...).
        task: ``user`` (recommendations for a user), ``session`` (next song) or ``playlist``
            (playlist continuation).
    """

    run_id: str
    path: Path
    model: str
    created_at: str
    snapshot_id: str | None = None
    num_parameters: int = 0
    train_seconds: float | None = None
    checkpoint: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    fit_info: dict[str, Any] = field(default_factory=dict)
    task: str = "user"


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)} (got {task!r})")
    return task


def _active_file(task: str) -> str:
    return ACTIVE_FILE if _check_task(task) == "user" else f"{ACTIVE_FILE}-{task}"


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "", name.lower())
    return slug or "model"


def make_by_name(
    models: Mapping[str, Callable[..., T]], name: str, kind: str, **overrides: Any
) -> T:
    """A fresh model from a name table: case, ``_`` and ``-`` are ignored in ``name``.

    Raises:
        ValueError: unknown name; the message says ``unknown {kind} {name!r}`` and lists
            the choices.
    """
    key = name.lower().replace("_", "").replace("-", "")
    if key not in models:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {', '.join(models)}")
    return models[key](**overrides)


def new_run_id(model_name: str, now: datetime | None = None) -> str:
    """A fresh run id, e.g. ``20261126-153000-enhancedgat-1a2b3c`` (UTC time)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{_slug(model_name)}-{secrets.token_hex(3)}"


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ValueError(f"run_id must look like 20261126-153000-model-1a2b3c (got {run_id!r})")
    return run_id


def _jsonable(obj: Any) -> Any:
    """Make numpy scalars/arrays, paths and tuples JSON-serialisable."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return repr(obj)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")


def _torch_module(model: Any) -> torch.nn.Module | None:
    if isinstance(model, torch.nn.Module):
        return model
    for attr in ("module", "model"):
        inner = getattr(model, attr, None)
        if isinstance(inner, torch.nn.Module):
            return inner
    return None


def save_run(
    model: Any,
    *,
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    snapshot_id: str | None = None,
    train_seconds: float | None = None,
    fit_info: dict[str, Any] | None = None,
    checkpoint: bool | None = None,
    run_id: str | None = None,
    task: str = "user",
) -> RunInfo:
    """Record a fitted model as a new run.

    Args:
        model: the fitted recommender (its ``name`` and ``num_parameters()`` are recorded).
        root: run root (default ``./runs``), created if missing.
        config, metrics, fit_info: JSON-serialisable dicts (numpy values are converted).
        snapshot_id: id of the snapshot it was trained on.
        train_seconds: fit wall time.
        checkpoint: None (default) saves torch models' ``state_dict`` and nothing for others;
            True also pickles non-torch models; False saves nothing.
        run_id: explicit id (default :func:`new_run_id`).
        task: which task the model serves (one of :data:`TASKS`).
    """
    _check_task(task)
    root = Path(root)
    name = str(getattr(model, "name", type(model).__name__.lower()))
    run_id = _check_run_id(run_id) if run_id is not None else new_run_id(name)
    final = root / run_id
    if final.exists():
        raise FileExistsError(f"run {run_id} already exists under {root}")
    root.mkdir(parents=True, exist_ok=True)
    num_params = getattr(model, "num_parameters", None)
    info = RunInfo(
        run_id=run_id,
        path=final,
        model=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        snapshot_id=snapshot_id,
        num_parameters=int(num_params()) if callable(num_params) else 0,
        train_seconds=None if train_seconds is None else float(train_seconds),
        config=dict(config or {}),
        metrics=dict(metrics or {}),
        fit_info=dict(fit_info or {}),
        task=task,
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=root))
    try:
        ckpt_name: str | None = None
        module = _torch_module(model)
        if checkpoint is not False and module is not None:
            ckpt_name = "model.pt"
            torch.save(module.state_dict(), tmp / ckpt_name)
        elif checkpoint:
            ckpt_name = "model.pkl"
            with open(tmp / ckpt_name, "wb") as fh:
                pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        info.checkpoint = final / ckpt_name if ckpt_name else None
        _write_json(tmp / "config.json", info.config)
        _write_json(tmp / "metrics.json", info.metrics)
        meta = {
            k: v
            for k, v in asdict(info).items()
            if k not in ("path", "config", "metrics", "checkpoint")
        }
        meta["checkpoint"] = ckpt_name
        _write_json(tmp / "run.json", meta)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved run %s", run_id)
    return info


def load_run(root: str | os.PathLike[str], run_id: str) -> RunInfo:
    """Read one run's metadata, config and metrics (not the checkpoint).

    Raises:
        ValueError: malformed run id.
        RunNotFound: no such run.
    """
    path = Path(root) / _check_run_id(run_id)
    if not (path / "run.json").is_file():
        raise RunNotFound(f"no run {run_id} under {root}")
    meta = json.loads((path / "run.json").read_text())
    config = json.loads((path / "config.json").read_text())
    metrics = json.loads((path / "metrics.json").read_text())
    ckpt = meta.get("checkpoint")
    return RunInfo(
        run_id=run_id,
        path=path,
        model=meta["model"],
        created_at=meta["created_at"],
        snapshot_id=meta.get("snapshot_id"),
        num_parameters=int(meta.get("num_parameters") or 0),
        train_seconds=meta.get("train_seconds"),
        checkpoint=path / ckpt if ckpt else None,
        config=config,
        metrics=metrics,
        fit_info=meta.get("fit_info") or {},
        task=meta.get("task") or "user",
    )


def load_checkpoint(info: RunInfo, *, map_location: str = "cpu") -> Any:
    """The run's checkpoint: a torch ``state_dict`` (``model.pt``) or the pickled model.

    Only load checkpoints you wrote: pickle runs code. Torch checkpoints are read with
    ``weights_only=True``.

    Raises:
        FileNotFoundError: the run has no checkpoint.
    """
    if info.checkpoint is None or not info.checkpoint.is_file():
        raise FileNotFoundError(f"run {info.run_id} has no checkpoint")
    if info.checkpoint.suffix == ".pt":
        return torch.load(info.checkpoint, map_location=map_location, weights_only=True)
    with open(info.checkpoint, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own runs only


def list_runs(root: str | os.PathLike[str] = DEFAULT_ROOT) -> list[RunInfo]:
    """All complete runs under ``root``, oldest first (empty if the root does not exist)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if child.is_dir() and _RUN_ID.match(child.name) and (child / "run.json").is_file():
            try:
                runs.append(load_run(root, child.name))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable run %s: %s", child.name, exc)
    return sorted(runs, key=lambda r: (r.created_at, r.run_id))


def set_active(root: str | os.PathLike[str], run_id: str, *, task: str | None = None) -> None:
    """Point the active file of the run's task (``root/ACTIVE`` for ``user``) at a run.

    The replace is atomic. ``task``, when given, must match the run's own task.
    """
    info = load_run(root, run_id)
    if task is not None and _check_task(task) != info.task:
        raise ValueError(f"run {run_id} serves the {info.task} task, not {task}")
    root = Path(root)
    fd, tmp = tempfile.mkstemp(prefix=".ACTIVE-", dir=root)
    with os.fdopen(fd, "w") as fh:
        fh.write(run_id + "\n")
    os.replace(tmp, root / _active_file(info.task))


def get_active(root: str | os.PathLike[str] = DEFAULT_ROOT, *, task: str = "user") -> str | None:
    """The active run id for a task, or None if none is set."""
    path = Path(root) / _active_file(task)
    if not path.is_file():
        return None
    run_id = path.read_text().strip()
    return _check_run_id(run_id) if run_id else None


def compare_table(root: str | os.PathLike[str] = DEFAULT_ROOT) -> pd.DataFrame:
    """One row per run (indexed by run id): model, snapshot, size, time, active, metrics."""
    active = {get_active(root, task=t) for t in TASKS} - {None}
    rows = [
        {
            "run_id": r.run_id,
            "task": r.task,
            "model": r.model,
            "created_at": r.created_at,
            "snapshot_id": r.snapshot_id,
            "num_parameters": r.num_parameters,
            "train_seconds": r.train_seconds,
            "active": r.run_id in active,
            **{k: v for k, v in r.metrics.items() if isinstance(v, int | float | None)},
        }
        for r in list_runs(root)
    ]
    columns = [
        "run_id",
        "task",
        "model",
        "created_at",
        "snapshot_id",
        "num_parameters",
        "train_seconds",
        "active",
    ]
    return pd.DataFrame(rows, columns=None if rows else columns).set_index("run_id")


def resolve_run(
    root: str | os.PathLike[str], task: str = "user", run_id: str | None = None
) -> RunInfo:
    """The named run, or the active run of ``task``, loaded and checked to serve ``task``.

    The one place that answers "which run?" for the CLI, the API and the task loaders.

    Raises:
        RunNotFound: no active run of ``task``, an unknown or malformed id, or a run of
            another task; each with a one-line hint.
    """
    root = Path(root)
    _check_task(task)
    train = "spotify-engine train" + ("" if task == "user" else f" --task {task}")
    rid = run_id if run_id is not None else get_active(root, task=task)
    if rid is None:
        raise RunNotFound(f"no active {task} run in {root}", hint=f"train one: {train}")
    try:
        info = load_run(root, rid)
    except (RunNotFound, ValueError):
        raise RunNotFound(f"no run {rid!r} in {root}") from None
    if info.task != task:
        raise RunNotFound(
            f"run {rid} serves the {info.task} task, not {task}",
            hint=f"pick a run trained with: {train}",
        )
    return info
