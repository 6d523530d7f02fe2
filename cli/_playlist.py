"""``train --task playlist`` and ``evaluate --task playlist``: playlist continuation runs.

Called from ``cli._models``; heavy imports happen inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from cli._common import console, open_driver, run_or_active, settings
from spotify_engine.errors import ModelError

if TYPE_CHECKING:
    import neo4j

_BUCKET_ORDER = ("0", "1", "5", "10", "25")


def export_playlists(driver: neo4j.Driver, database: str) -> Any:
    """Export the graph with a progress bar; playlists are required, plays are not."""
    from cli._common import export_with_progress

    snap = export_with_progress(driver, database)
    if snap.playlist_song.shape[1] == 0:
        raise ModelError(
            "the graph has no playlist tracks to learn from",
            hint="load playlists first, e.g. spotify-engine ingest mpd <folder>",
        )
    return snap


def _cell(v: Any, metric: str) -> str:
    if v is None:
        return "-"
    if metric == "clicks":
        return f"{v:.2f}"
    return f"{v:.4f}" if isinstance(v, float) else f"{v:,}"


def summary_table(rows: dict[str, dict[str, Any]], title: str) -> Table:
    """One row per model: validation and test figures over all buckets."""
    table = Table(title=title)
    for c in (
        "model",
        "val R-prec",
        "R-prec",
        "NDCG",
        "NDCG@10",
        "clicks",
        "recall@100",
        "recall@500",
        "cases",
        "train s",
    ):
        table.add_column(c, justify="left" if c == "model" else "right")
    for name, r in rows.items():
        t = r["test"]["overall"]
        table.add_row(
            name,
            _cell(r["val"]["overall"].get("r_precision"), "r_precision"),
            _cell(t.get("r_precision"), "r_precision"),
            _cell(t.get("ndcg"), "ndcg"),
            _cell(t.get("ndcg@10"), "ndcg@10"),
            _cell(t.get("clicks"), "clicks"),
            _cell(t.get("recall@100"), "recall@100"),
            _cell(t.get("recall@500"), "recall@500"),
            _cell(t.get("n_cases"), "n_cases"),
            "-" if r.get("seconds") is None else f"{r['seconds']:.1f}",
        )
    return table


def bucket_table(rows: dict[str, dict[str, Any]], metric: str, title: str) -> Table:
    """Test ``metric`` per seed-count bucket K, one row per model."""
    table = Table(title=title)
    table.add_column("model")
    buckets = [
        b for b in _BUCKET_ORDER if any(b in r["test"].get("buckets", {}) for r in rows.values())
    ]
    for b in buckets:
        table.add_column(f"K={b}", justify="right")
    table.add_column("all", justify="right")
    for name, r in rows.items():
        by = r["test"].get("buckets", {})
        cells = [_cell(by.get(b, {}).get(metric), metric) for b in buckets]
        table.add_row(name, *cells, _cell(r["test"]["overall"].get(metric), metric))
    return table


def print_results(rows: dict[str, dict[str, Any]]) -> None:
    console.print(summary_table(rows, "Playlist continuation: held-out test playlists"))
    console.print(bucket_table(rows, "r_precision", "R-precision by seed tracks K (test)"))
    console.print(bucket_table(rows, "ndcg", "NDCG by seed tracks K (test)"))
    console.print(
        "[dim]context: the best RecSys Challenge 2018 main-track result on the real Million "
        "Playlist Dataset was R-precision 0.224, NDCG 0.395 (not a like-for-like comparison)[/]"
    )


def train_playlist(
    *,
    model: str | None,
    epochs: int | None,
    snapshot: Path | None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the chosen model (default: all, activating the best on validation), record runs."""
    from gnn.graph import load_snapshot
    from gnn.playlists import PLAYLIST_MODELS, make_playlist_model, train_playlist_models

    s = settings()
    if model is not None:
        try:
            names = [make_playlist_model(model).name]
        except ValueError as exc:
            raise ModelError(str(exc), hint=f"use one of {', '.join(PLAYLIST_MODELS)}") from None
    else:
        names = list(PLAYLIST_MODELS)
    if snapshot is not None:
        snap = load_snapshot(snapshot)
    else:
        with open_driver(s) as driver:
            snap = export_playlists(driver, s.neo4j_database)
    console.print(
        f"graph: {snap.num_playlists:,} playlists, {snap.playlist_song.shape[1]:,} playlist "
        f"tracks, {snap.num_songs:,} songs"
    )
    overrides = (
        {"playlistgnn": {"epochs": epochs}, "playlisthybrid": {"epochs": epochs}}
        if epochs is not None
        else None
    )
    with console.status("training ...") as status:
        results, split = train_playlist_models(
            snap,
            names,
            runs_root=Path(s.runs_dir),
            activate=names[0] if model is not None else "best",
            seed=seed,
            overrides=overrides,
            progress=lambda m: status.update(m),
        )
    console.print(
        f"split: {len(split.train):,} training, {len(split.val):,} validation, "
        f"{len(split.test):,} test playlists"
    )
    rows = {
        name: {"val": r.val, "test": r.test, "seconds": r.seconds} for name, r in results.items()
    }
    print_results(rows)
    from cli._session import winner_line
    from gnn.core import get_active
    from gnn.playlists import playlist_selection

    if len(results) > 1:
        console.print(winner_line(playlist_selection(results), "playlist"))
    active = get_active(Path(s.runs_dir), task="playlist")
    for name, r in results.items():
        if r.run is not None and r.run.run_id == active:
            console.print(f"active playlist model: {name} (run {active})")
    return {"results": results, "active": active}


def evaluate_playlist(*, run: str | None) -> None:
    """Show a playlist run's test figures per bucket, beside the runs trained with it."""
    from gnn.core import list_runs

    root = Path(settings().runs_dir)
    info = run_or_active(run, "playlist")
    peers = [
        r
        for r in list_runs(root)
        if r.task == "playlist"
        and r.snapshot_id == info.snapshot_id
        and r.config.get("seed") == info.config.get("seed")
        and "test" in r.metrics
    ]
    latest: dict[str, Any] = {}
    for r in peers:  # oldest first: keep each model's latest run
        latest[r.model] = r
    latest[info.model] = info
    rows = {
        (f"{m} *" if r.run_id == info.run_id else m): {
            "val": r.metrics.get("val", {"overall": {}}),
            "test": r.metrics["test"],
            "seconds": r.train_seconds,
        }
        for m, r in latest.items()
        if "test" in r.metrics
    }
    console.print(
        f"run {info.run_id} ({info.model}); * marks it, other rows share its data and split"
    )
    print_results(rows)
