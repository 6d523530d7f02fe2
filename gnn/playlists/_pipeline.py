"""Playlist continuation: the model registry, training and comparison, and the run folder format.

Given a playlist's first K tracks and its name, rank the tracks that complete it (see
:mod:`gnn.playlists._data` for the split and cases, :mod:`gnn.playlists._evaluate` for the
challenge metrics). :func:`save_playlist_run` records a model in the registry (task
``playlist``) with its arrays in ``playlist.npz`` and its vocabulary in ``playlist.json``;
:func:`load_playlist_continuer` reads it back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gnn.core._registry import RunInfo, make_by_name, resolve_run, save_run, set_active
from gnn.graph._snapshot import GraphSnapshot
from gnn.playlists._base import PlaylistModel
from gnn.playlists._baselines import (
    EASEContinuer,
    HybridKNN,
    ItemKNNContinuer,
    NamePopularity,
    PlaylistPopularity,
)
from gnn.playlists._data import BUCKETS, PlaylistCorpus, PlaylistSplit, make_cases, split_playlists
from gnn.playlists._evaluate import LIST_LENGTH, evaluate_cases, flatten_metrics
from gnn.playlists._hybrid import PlaylistHybrid
from gnn.playlists._mixture import PlaylistMixture
from gnn.playlists._train import PlaylistGNN
from spotify_engine.errors import ModelError

log = logging.getLogger(__name__)


_ARRAYS = "playlist.npz"


_META = "playlist.json"


_FORMAT = 1


PLAYLIST_MODELS: dict[str, type[PlaylistModel]] = {
    "popularity": PlaylistPopularity,
    "namepop": NamePopularity,
    "itemknn": ItemKNNContinuer,
    "hybridknn": HybridKNN,
    "ease": EASEContinuer,
    "playlistgnn": PlaylistGNN,
    "playlisthybrid": PlaylistHybrid,
    "playlistmix": PlaylistMixture,
}


#: The simple models a learned one has to beat (the issue's bar: EASE^R x 1.05).
PLAYLIST_BASELINES = ("popularity", "namepop", "itemknn", "hybridknn", "ease")


#: The validation figure (overall, every bucket) that picks the served model.
SELECT_BY = "r_precision"


def playlist_selection(
    results: dict[str, PlaylistResult], metric: str = SELECT_BY
) -> dict[str, Any]:
    """Who wins on validation ``metric`` and by how much: the best model, the runner-up and
    the relative margin ``best / runner_up - 1``, the best baseline of
    :data:`PLAYLIST_BASELINES` other than the winner and the margin over it, and (reported
    only, they pick nothing) the winner's and that baseline's test figures.
    """
    if not results:
        raise ValueError("results must hold at least one fitted model (got none)")
    val = {m: float(r.val["overall"].get(metric, -1.0)) for m, r in results.items()}
    order = sorted(val, key=lambda m: -val[m])
    best = order[0]

    def rel(a: float, b: float) -> float:
        return a / b - 1.0 if b > 0 else float("inf")

    out: dict[str, Any] = {"metric": metric, "best": best, "best_val": val[best]}
    if len(order) > 1:
        out.update(
            runner_up=order[1], runner_up_val=val[order[1]], margin=rel(val[best], val[order[1]])
        )
    rivals = [m for m in order if m in PLAYLIST_BASELINES and m != best]
    out["best_test"] = float(results[best].test["overall"].get(metric, float("nan")))
    if rivals:
        b = rivals[0]
        out.update(
            best_baseline=b,
            best_baseline_val=val[b],
            margin_over_best_baseline=rel(val[best], val[b]),
            best_baseline_test=float(results[b].test["overall"].get(metric, float("nan"))),
        )
    return out


def make_playlist_model(name: str, **overrides: Any) -> PlaylistModel:
    """A fresh continuation model by name (:data:`PLAYLIST_MODELS`)."""
    return make_by_name(PLAYLIST_MODELS, name, "playlist model", **overrides)


def save_playlist_run(
    model: PlaylistModel,
    root: str | os.PathLike[str],
    *,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    snapshot_id: str | None = None,
    train_seconds: float | None = None,
    fit_info: dict[str, Any] | None = None,
) -> RunInfo:
    """Record a fitted model as a run of task ``playlist``, with its state beside it."""
    info = save_run(
        model,
        root=root,
        config=config,
        metrics=metrics,
        snapshot_id=snapshot_id,
        train_seconds=train_seconds,
        fit_info=fit_info,
        checkpoint=False,
        task="playlist",
    )
    arrays, meta = model.state()
    meta = {"format": _FORMAT, "model": model.name, **meta}
    tmp = info.path / (_ARRAYS + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    tmp.replace(info.path / _ARRAYS)
    tmp = info.path / (_META + ".tmp")
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    tmp.replace(info.path / _META)
    model.run_id = info.run_id
    return info


def load_playlist_continuer(runs_root: Path, run_id: str | None = None) -> PlaylistModel:
    """The model of a playlist run (default: the active run of task ``playlist``).

    Raises:
        RunNotFound: no active playlist run, an unknown run, or a run of another task.
        ModelError: the run folder lacks the saved model.
    """
    info = resolve_run(runs_root, "playlist", run_id)
    rid = info.run_id
    arrays_path, meta_path = info.path / _ARRAYS, info.path / _META
    if not arrays_path.is_file() or not meta_path.is_file():
        raise ModelError(
            f"run {rid} has no saved playlist model",
            hint="train again: spotify-engine train --task playlist",
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != _FORMAT or meta.get("model") not in PLAYLIST_MODELS:
        raise ModelError(f"run {rid}: unsupported playlist model {meta.get('model')!r}")
    with np.load(arrays_path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    model = PLAYLIST_MODELS[meta["model"]].from_state(arrays, meta)
    model.run_id = rid
    return model


@dataclass
class PlaylistResult:
    """One model fitted and scored: validation and test results per bucket, and its run."""

    model: PlaylistModel
    val: dict[str, Any]
    test: dict[str, Any]
    seconds: float
    fit_info: dict[str, Any] = field(default_factory=dict)
    run: RunInfo | None = None


def train_playlist_models(
    snap: GraphSnapshot,
    models: Sequence[str] = tuple(PLAYLIST_MODELS),
    *,
    runs_root: str | os.PathLike[str] | None = None,
    activate: str | None = "best",
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
    overrides: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    reuse: Mapping[str, PlaylistModel] | None = None,
) -> tuple[dict[str, PlaylistResult], PlaylistSplit]:
    """Split the snapshot's playlists, fit each model, score it on validation and test.

    Args:
        models: names from :data:`PLAYLIST_MODELS`. A ``playlisthybrid`` listed after
            ``ease`` and ``playlistgnn`` (same configurations) reuses them instead of fitting
            them again, and a ``playlistmix`` after ``ease`` reuses it; their seconds count
            in its ``seconds``.
        runs_root: record each model as a run of task ``playlist`` there (None: no runs).
        activate: ``"best"`` activates the model with the best validation R-precision, a
            model name activates that one, None activates nothing.
        overrides: per-model constructor arguments, e.g. ``{"playlistgnn": {"epochs": 5}}``.
        progress: called with a line of text as work proceeds.
        reuse: models fitted earlier on the same snapshot with the same ``seed`` and
            fractions, which a ``playlisthybrid`` or ``playlistmix`` may take instead of fitting its parts
            again (their seconds are not counted then).

    Raises:
        ModelError: the snapshot has fewer than three non-empty playlists.
    """
    say = progress or (lambda _m: None)
    corpus = PlaylistCorpus.from_snapshot(snap)
    try:
        split = split_playlists(corpus, val_frac=val_frac, test_frac=test_frac, seed=seed)
    except ValueError as exc:
        raise ModelError(
            f"cannot evaluate playlist continuation: {exc}",
            hint="load playlists first, e.g. spotify-engine ingest mpd <folder>",
        ) from None
    val_cases = make_cases(corpus, split.val)
    test_cases = make_cases(corpus, split.test)
    snapshot_id = snap.snapshot_id()
    config = {
        "val_frac": val_frac,
        "test_frac": test_frac,
        "seed": seed,
        "buckets": list(BUCKETS),
        "list_length": LIST_LENGTH,
        "train_playlists": len(split.train),
        "val_playlists": len(split.val),
        "test_playlists": len(split.test),
    }
    results: dict[str, PlaylistResult] = {}
    for name in models:
        model = make_playlist_model(name, **(overrides or {}).get(name, {}))
        say(f"fitting {model.name} ...")
        reused = 0.0
        if isinstance(model, PlaylistHybrid | PlaylistMixture):
            fitted = {**(reuse or {}), **{m: r.model for m, r in results.items()}}
            reused = sum(results[m].seconds for m in model.adopt(fitted) if m in results)
        t0 = time.perf_counter()
        info = model.fit(corpus, split.train, val=val_cases, progress=say)
        seconds = time.perf_counter() - t0 + reused
        say(f"evaluating {model.name} ...")
        val = evaluate_cases(model.rank, val_cases, corpus.song_artist)
        test = evaluate_cases(model.rank, test_cases, corpus.song_artist)
        res = PlaylistResult(model, val, test, seconds, info)
        if runs_root is not None:
            metrics = {
                **flatten_metrics(test),
                **flatten_metrics(val, "val_"),
                "val": val,
                "test": test,
            }
            cfg = {**config, "model": model.name, **(overrides or {}).get(name, {})}
            res.run = save_playlist_run(
                model,
                runs_root,
                config=cfg,
                metrics=metrics,
                snapshot_id=snapshot_id,
                train_seconds=seconds,
                fit_info=info,
            )
        results[model.name] = res
    if runs_root is not None and activate is not None and results:
        pick = (
            playlist_selection(results)["best"]
            if activate == "best"
            else make_playlist_model(activate).name
        )
        run = results[pick].run if pick in results else None
        if run is None:
            raise ValueError(f"cannot activate {activate!r}: not among the fitted models")
        set_active(runs_root, run.run_id, task="playlist")
        say(f"active playlist model: {pick} ({run.run_id})")
    return results, split
