"""``train --task session`` and ``evaluate --task session``: the next-song models.

Called from ``train`` and ``evaluate`` in ``_models.py``; heavy imports stay inside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from cli._common import console, open_driver, run_or_active, settings
from spotify_engine.errors import ModelError

#: ``--model best`` fits all of these and serves the best by validation MRR@20 (the hybrid
#: comes after ``sessiongnn`` and ``markov`` so it reuses them instead of training again).
SESSION_CHOICES = (
    "popularity", "markov", "sknn", "vsknn", "stan", "sessiongnn", "sessionhybrid", "sessionmix",
)  # fmt: skip
COLUMNS = ("hit_rate@10", "mrr@10", "hit_rate@20", "mrr@20", "coverage@20")


def session_table(rows: dict[str, dict[str, Any]], title: str, active: str | None = None) -> Table:
    """Test metrics (and validation MRR@20, time, size) per model."""
    table = Table(title=title)
    table.add_column("model")
    for c in (*COLUMNS, "val_mrr@20", "train s", "parameters"):
        table.add_column(c, justify="right")
    for name, r in rows.items():
        cells = [f"{float(r[c]):.4f}" if r.get(c) is not None else "-" for c in COLUMNS]
        val = r.get("val_mrr@20")
        cells.append(f"{float(val):.4f}" if val is not None else "-")
        secs = r.get("train_seconds")
        cells.append(f"{float(secs):.1f}" if secs is not None else "-")
        cells.append(f"{int(r.get('parameters') or 0):,}")
        label = f"{name} *" if active is not None and name == active else name
        table.add_row(label, *cells)
    return table


def winner_line(sel: dict[str, Any], what: str) -> str:
    """Which model won on validation and by how much, and its test figure (reported only)."""
    metric = sel["metric"]
    text = f"served {what} model: {sel['best']} (validation {metric} {sel['best_val']:.4f}"
    if "runner_up" in sel:
        text += f", {100 * sel['margin']:+.1f}% over {sel['runner_up']} {sel['runner_up_val']:.4f}"
    if "best_baseline" in sel and sel["best_baseline"] != sel.get("runner_up"):
        text += (
            f", {100 * sel['margin_over_best_baseline']:+.1f}% over the best baseline "
            f"{sel['best_baseline']} {sel['best_baseline_val']:.4f}"
        )
    text += ")"
    if "best_test" in sel:
        text += f"; test {metric} {sel['best_test']:.4f}"
        if "best_baseline_test" in sel:
            text += f" vs {sel['best_baseline']} {sel['best_baseline_test']:.4f}"
    return text


def compare_and_show(
    snap: Any, names: list[str], overrides: dict[str, dict[str, Any]], runs_root: Path
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Split the snapshot's sessions, fit and record ``names``, activate the best by
    validation MRR@20, and print the split and the test table."""
    from gnn.sessions import compare_session_models, prepare_sessions

    exp = prepare_sessions(snap)
    cut = exp.split.describe()["sessions"]
    console.print(
        f"sessions: {exp.sessions.num_sessions:,} ({cut['train']:,} train, {cut['val']:,} "
        f"validation, {cut['test']:,} test; global time cut)"
    )
    with console.status("Next song: training ...") as status:
        res = compare_session_models(
            exp,
            names,
            overrides=overrides,
            runs_root=runs_root,
            activate=True,
            progress=lambda msg: status.update(f"Next song: {msg} ..."),
        )
    rows = {m: r.to_dict() for m, r in res.table.iterrows()}
    console.print(
        session_table(
            rows,
            "Next song in a session: held-out sessions (test), input songs excluded",
            active=res.best,
        )
    )
    return res, rows


def train_session(
    *, model: str | None, epochs: int | None, snapshot_path: Path | None
) -> dict[str, Any]:
    """Fit the chosen next-song model(s), record every one, activate the chosen one."""
    from gnn.graph import load_snapshot

    choice = (model or "best").lower()
    if choice != "best" and choice not in SESSION_CHOICES:
        raise ModelError(
            f"unknown session model {model!r}",
            hint=f"choose best or one of {', '.join(SESSION_CHOICES)}",
        )
    s = settings()
    if snapshot_path is not None:
        snap = load_snapshot(snapshot_path)
    else:
        from cli._common import export_graph

        with open_driver() as driver:
            snap = export_graph(driver, s.neo4j_database)
    if snap.num_plays == 0:
        raise ModelError("the graph has no plays", hint="spotify-engine ingest synthetic")
    names = list(SESSION_CHOICES) if choice == "best" else [choice]
    gnn: dict[str, Any] = {"threads": s.torch_threads}
    if epochs is not None:
        gnn["epochs"] = epochs
    overrides = {"sessiongnn": gnn, "sessionhybrid": dict(gnn)}
    res, rows = compare_and_show(snap, names, overrides, Path(s.runs_dir))
    console.print(winner_line(res.selection, "next-song"))
    console.print(f"active session model: {res.best} (run {res.active}; best validation MRR@20)")
    return {"best": res.best, "run_id": res.active, "rows": rows}


def evaluate_session(*, run: str | None) -> dict[str, dict[str, Any]]:
    """The stored metrics of a session run and of the models trained alongside it."""
    from gnn.core import list_runs

    root = Path(settings().runs_dir)
    info = run_or_active(run, "session")
    run_id = info.run_id
    group = info.config.get("comparison")
    peers = [
        r
        for r in list_runs(root)
        if group is not None and r.task == "session" and r.config.get("comparison") == group
    ]
    rows = {r.model: {**r.metrics, "parameters": r.num_parameters} for r in (peers or [info])}
    console.print(
        session_table(
            rows, f"Next song in a session (run {run_id}, test sessions)", active=info.model
        )
    )
    console.print(json.dumps({k: info.config.get(k) for k in ("split", "protocol", "sessions")}))
    return rows
