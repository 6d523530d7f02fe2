"""Evaluation harness, model registry and training-curve plots (no Neo4j)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from gnn.core._harness import compare, evaluate, evaluate_view, metric_keys
from gnn.core._plots import plot_training_curves
from gnn.core._recommender import Recommender
from gnn.core._registry import (
    compare_table,
    get_active,
    list_runs,
    load_checkpoint,
    load_run,
    new_run_id,
    save_run,
    set_active,
)
from gnn.graph._data import build_train_data, random_snapshot, relevant_items, temporal_split
from gnn.users._baselines import EASE, ItemKNN, Oracle, Popularity
from spotify_engine.errors import RunNotFound

torch.set_num_threads(1)
KS = (5, 10)
BOUNDED = [k for k in metric_keys(KS) if not k.startswith("novelty")]


@pytest.fixture(scope="module")
def snap():
    return random_snapshot(num_users=30, num_songs=60, plays_per_user=25, seed=7)


@pytest.fixture(scope="module")
def split(snap):
    return temporal_split(snap)


def test_evaluate_reports_every_metric_in_range(snap, split):
    model = ItemKNN()
    model.fit(build_train_data(snap, split.train))
    out = evaluate(model, snap, split, "test", ks=KS)
    assert set(metric_keys(KS)) | {"n_users", "n_users_skipped"} == set(out)
    relevant = relevant_items(snap, split, "test")
    assert out["n_users"] == sum(len(r) > 0 for r in relevant) > 0
    assert out["n_users"] + out["n_users_skipped"] == snap.num_users
    for key in BOUNDED:
        assert 0.0 <= out[key] <= 1.0, key
    assert out["novelty@5"] > 0 and np.isfinite(out["novelty@10"])
    assert out["recall@10"] >= out["recall@5"]


def test_oracle_of_the_test_period_is_perfect(snap, split):
    """Preferences that are exactly the relevant test songs must score recall and NDCG 1."""
    relevant = relevant_items(snap, split, "test")
    prefs = np.zeros((snap.num_users, snap.num_songs), dtype=np.float32)
    for u, rel in enumerate(relevant):
        prefs[u, rel] = 1.0
    out = evaluate(Oracle(prefs), snap, split, ks=(10,))
    big = max(len(r) for r in relevant)
    assert big <= 10
    assert out["recall@10"] == pytest.approx(1.0)
    assert out["ndcg@10"] == pytest.approx(1.0)
    assert out["mrr@10"] == pytest.approx(1.0)
    # and the inverse preferences score worse
    worse = evaluate(Oracle(-prefs), snap, split, ks=(10,))
    assert worse["ndcg@10"] < 0.5


def test_evaluate_view_restricts_users_and_validates(snap, split):
    train = build_train_data(snap, split.train)
    model = Popularity()
    model.fit(train)
    rel = relevant_items(snap, split, "val")
    users = np.array([u for u in range(snap.num_users) if len(rel[u])][:3])
    out = evaluate_view(model, train, rel, (5,), users=users, beyond_accuracy=False)
    assert out["n_users"] == 3 and "coverage@5" not in out
    with pytest.raises(ValueError, match=r"got 61"):
        evaluate_view(model, train, rel, (61,))
    with pytest.raises(ValueError, match="phase"):
        evaluate(model, snap, split, "train")


def test_compare_fits_and_evaluates_every_model(snap, split, tmp_path):
    models = [Popularity(), ItemKNN(neighbours=20), EASE(l2=(10.0, 100.0))]
    table = compare(models, snap, split, ks=KS, registry_root=tmp_path / "runs")
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["popularity", "itemknn", "ease"]
    for col in ("fit_seconds", "eval_seconds", "num_parameters", "peak_rss_mb", "n_users"):
        assert col in table.columns
    assert (table[BOUNDED] >= 0).all().all() and (table[BOUNDED] <= 1).all().all()
    assert table.loc["popularity", "num_parameters"] == 0
    assert table.loc["ease", "num_parameters"] > 0
    assert (table["peak_rss_mb"] > 0).all()
    assert len(list_runs(tmp_path / "runs")) == 3
    with pytest.raises(ValueError, match="unique"):
        compare([Popularity(), Popularity()], snap, split)


class _TorchModel(Recommender):
    name = "TinyGNN"

    def __init__(self):
        self.module = torch.nn.Linear(3, 2)

    def score(self, users, observed):
        return np.zeros((len(users), observed.num_songs), dtype=np.float32)

    def num_parameters(self):
        return sum(p.numel() for p in self.module.parameters())


def test_registry_round_trip(tmp_path):
    root = tmp_path / "runs"
    assert list_runs(root) == [] and get_active(root) is None
    model = _TorchModel()
    info = save_run(
        model,
        root=root,
        config={"lr": 0.01, "ks": (10, 20)},
        metrics={"ndcg@20": np.float32(0.25), "n_users": np.int64(12)},
        snapshot_id="abc123",
        train_seconds=1.5,
        fit_info={"history": {"loss": [1.0, 0.5]}},
    )
    assert info.run_id.split("-")[2] == "tinygnn"
    loaded = load_run(root, info.run_id)
    assert loaded.model == "TinyGNN" and loaded.snapshot_id == "abc123"
    assert loaded.num_parameters == 8 and loaded.train_seconds == 1.5
    assert loaded.config == {"lr": 0.01, "ks": [10, 20]}
    assert loaded.metrics["ndcg@20"] == pytest.approx(0.25)
    assert loaded.fit_info["history"]["loss"] == [1.0, 0.5]
    state = load_checkpoint(loaded)
    for k, v in model.module.state_dict().items():
        assert torch.equal(state[k], v)
    assert json.loads((loaded.path / "config.json").read_text())["lr"] == 0.01

    pop = Popularity()
    other = save_run(pop, root=root, metrics={"ndcg@20": 0.1}, checkpoint=True)
    assert isinstance(load_checkpoint(load_run(root, other.run_id)), Popularity)
    bare = save_run(Popularity(), root=root)
    assert bare.checkpoint is None
    with pytest.raises(FileNotFoundError):
        load_checkpoint(load_run(root, bare.run_id))

    set_active(root, info.run_id)
    assert get_active(root) == info.run_id
    table = compare_table(root)
    assert len(table) == 3 and table.loc[info.run_id, "active"]
    assert table.loc[info.run_id, "ndcg@20"] == pytest.approx(0.25)
    assert {r.run_id for r in list_runs(root)} == set(table.index)

    with pytest.raises(ValueError, match="run_id"):
        load_run(root, "../etc")
    with pytest.raises(RunNotFound):
        set_active(root, new_run_id("ghost"))
    assert get_active(root) == info.run_id


def test_each_task_has_its_own_active_run(tmp_path):
    root = tmp_path / "runs"
    user_run = save_run(_TorchModel(), root=root)
    session_run = save_run(_TorchModel(), root=root, task="session")
    assert load_run(root, session_run.run_id).task == "session"
    assert load_run(root, user_run.run_id).task == "user"
    set_active(root, user_run.run_id)
    set_active(root, session_run.run_id, task="session")
    assert get_active(root) == user_run.run_id
    assert get_active(root, task="session") == session_run.run_id
    assert get_active(root, task="playlist") is None
    with pytest.raises(ValueError, match="serves the session task"):
        set_active(root, session_run.run_id, task="playlist")
    with pytest.raises(ValueError, match="task must be one of"):
        save_run(_TorchModel(), root=root, task="radio")
    table = compare_table(root)
    assert table.loc[session_run.run_id, "task"] == "session"
    assert table["active"].all()


def test_new_run_id_format():
    from datetime import UTC, datetime

    rid = new_run_id("EnhancedGAT", datetime(2026, 11, 26, 15, 30, 0, tzinfo=UTC))
    assert rid.startswith("20261126-153000-enhancedgat-") and len(rid.split("-")[3]) == 6


def test_plot_training_curves_writes_png(tmp_path):
    out = plot_training_curves(
        {"loss": [1.0, 0.7, 0.5], "val_ndcg@20": [0.1, float("nan"), 0.2]},
        tmp_path / "plots" / "curves.png",
        title="tiny",
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one"):
        plot_training_curves({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="val"):
        plot_training_curves({"val": [float("nan")]}, tmp_path / "x.png")


def test_models_list_shows_each_tasks_active_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app
    from spotify_engine.settings import get_settings

    root = tmp_path / "runs"
    user_run = save_run(_TorchModel(), root=root, metrics={"ndcg@10": 0.25})
    session_run = save_run(_TorchModel(), root=root, task="session", metrics={"mrr@20": 0.125})
    old = save_run(_TorchModel(), root=root, task="session")
    set_active(root, user_run.run_id)
    set_active(root, session_run.run_id)
    monkeypatch.setenv("SPOTIFY_ENGINE_RUNS_DIR", str(root))
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    cells = {
        c[0]: c
        for c in (
            [x.strip() for x in ln.strip().strip("│").split("│")] for ln in out.output.splitlines()
        )
        if c and "tinygnn" in c[0]
    }
    assert cells[user_run.run_id][1:3] == ["user", "TinyGNN"]
    assert cells[user_run.run_id][-2:] == ["ndcg@10 0.2500", "*"]
    assert cells[session_run.run_id][1] == "session"
    assert cells[session_run.run_id][-2:] == ["mrr@20 0.1250", "*"]
    assert cells[old.run_id][-2:] == ["-", ""]
