"""``train``, ``evaluate``, ``models``, ``recommend`` and ``explain``: the model side of the CLI.

Heavy imports (torch, PyG) happen inside the commands, so ``spotify-engine neo4j status``
stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli._common import (
    console,
    export_graph,
    metrics_table,
    open_driver,
    progress_bars,
    quiet_torch,
    run_or_active,
    settings,
    train_and_write_back,
)
from spotify_engine.errors import ModelError, NotFound

if TYPE_CHECKING:
    import neo4j


models_app = typer.Typer(help="The model registry: list, compare, activate runs.")


def run_training(
    *,
    model: str,
    epochs: int | None,
    writeback: bool,
    k: int,
    snapshot_path: Path | None = None,
    driver: neo4j.Driver | None = None,
    budget_s: float | None = None,
) -> dict[str, Any]:
    """Export, train with validation and early stopping, test, register, write back."""
    quiet_torch()
    from gnn.graph import load_snapshot
    from gnn.users import prepare

    s = settings()
    t0 = time.perf_counter()
    if snapshot_path is not None:
        snap = load_snapshot(snapshot_path)
    else:
        assert driver is not None
        snap = export_graph(driver, s.neo4j_database)
    export_s = time.perf_counter() - t0
    console.print(
        f"graph: {snap.num_users:,} users, {snap.num_songs:,} songs, {snap.num_plays:,} plays "
        f"(exported in {export_s:.1f}s)"
    )
    exp = prepare(snap)
    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["epochs"] = epochs
    if model == "best":
        sel, wb = select_and_publish(
            driver if writeback else None,
            exp,
            overrides={"enhancedgat": overrides},
            k=k,
            budget_s=budget_s,
        )
        return {
            "run_id": sel.best.run.run_id,
            "metrics": sel.best.metrics,
            "experiment": exp,
            "writeback": wb,
            "selection": sel.selection,
        }
    out = train_and_write_back(driver if writeback else None, exp, model, overrides=overrides, k=k)
    res = out.train
    info = res.fit_info
    console.print(
        f"trained {res.recommender.name} in {res.seconds:.1f}s "
        f"({info.get('epochs', '-')} epochs, best {info.get('best_epoch', '-')}), "
        f"{res.recommender.num_parameters():,} parameters; run {res.run.run_id}"
    )
    console.print(
        metrics_table({res.recommender.name: res.metrics}, "Test metrics (held-out period)")
    )
    return {
        "run_id": res.run.run_id,
        "metrics": res.metrics,
        "experiment": exp,
        "writeback": out.writeback,
    }


def cap_line(fit_info: dict[str, Any]) -> str:
    """The served lists' per-artist cap and the validation figures it was chosen by."""
    div = fit_info.get("diversity") or {}
    figures = ", ".join(f"{c} {v:.4f}" for c, v in (div.get("ndcg@10") or {}).items())
    cap = div.get("max_per_artist")
    said = "no cap" if cap is None else f"at most {cap} songs per artist"
    return f"lists: {said} (validation NDCG@10 by cap: {figures or 'not measured'})"


def select_and_publish(
    driver: neo4j.Driver | None,
    exp: Any,
    *,
    overrides: dict[str, dict[str, Any]] | None = None,
    k: int = 10,
    names: tuple[str, ...] | None = None,
    show_table: bool = True,
    budget_s: float | None = None,
) -> tuple[Any, Any]:
    """Fit every user-task candidate, serve the best on validation NDCG@10 and (given a
    driver) write it back; prints the test table and the winner line (unless
    ``show_table=False``: the caller prints its own). ``budget_s``: the selection's time
    budget (default: the ``train_budget_s`` setting; 0: none).

    Returns the :class:`gnn.users.UserSelection` and the write-back result (or None).
    """
    from cli._common import _bar_callback, print_written
    from cli._session import winner_line
    from gnn.users import run_max_per_artist, train_and_select, write_back

    s = settings()
    kwargs = {} if names is None else {"names": names}
    with console.status("user task: fitting the candidates ...") as status:
        sel = train_and_select(
            exp,
            runs_root=Path(s.runs_dir),
            overrides=overrides,
            budget_s=s.train_budget(budget_s),
            progress=lambda n: status.update(
                f"user task: fitting {n} (tuned / early-stopped on validation) ..."
            ),
            **kwargs,
        )
    if show_table:
        table = sel.table()
        rows = {
            (f"{n} *" if n == sel.selection["best"] else n): r.to_dict()
            for n, r in table.iterrows()
        }
        console.print(
            metrics_table(
                rows,
                "User task: held-out test period (* served: best validation NDCG@10)",
                extra=("val_ndcg@10", "train_seconds"),
            )
        )
        console.print(winner_line(sel.selection, "user"))
        for reason in sel.skipped.values():
            console.print(reason, highlight=False)
        if "budget" in sel.selection:
            b = sel.selection["budget"]
            console.print(
                f"training budget: {b['spent']:.0f} s of {b['seconds']:.0f} s (the GNNs train "
                "in what the other candidates leave; --budget 0: no budget)",
                highlight=False,
            )
        console.print(cap_line(sel.best.fit_info))
    wb = None
    if driver is not None:
        with progress_bars() as bar:
            wb = write_back(
                driver,
                s.neo4j_database,
                sel.best.recommender,
                exp,
                sel.best.run.run_id,
                k=k,
                progress=_bar_callback(bar),
                max_per_artist=run_max_per_artist(sel.best.fit_info),
            )
        print_written(wb)
    return sel, wb


TASK_HELP = "user (recommendations for a user), session (next song) or playlist."
TASKS = ("user", "session", "playlist")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ModelError(f"unknown task {task!r}", hint=f"choose one of {', '.join(TASKS)}")


def train(
    model: Annotated[
        str | None,
        typer.Option(
            help="user task: best (all explainable models: enhancedgat, ease, rp3beta, "
            "itemknn, easerp3, hybrid; default: the best on validation NDCG@10 is served), "
            "enhancedgat, basicgat, lightgcn, ease, rp3beta, itemknn, easerp3, hybrid, "
            "popularity; session task: best "
            "(default: all, the best on validation MRR@20 is served), popularity, markov, "
            "sknn, vsknn, stan, sessiongnn, sessionhybrid, sessionmix; "
            "playlist task: playlistmix, playlisthybrid, playlistgnn, ease, hybridknn, itemknn, "
            "namepop, popularity (default: all, the best on validation R-precision is served)"
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Maximum epochs (early stopping may end sooner).")
    ] = None,
    k: Annotated[
        int, typer.Option(min=1, max=100, help="Recommendations per user to write back.")
    ] = 10,
    writeback: Annotated[
        bool,
        typer.Option(
            "--writeback/--no-writeback", help="Write recommendations and explanations to Neo4j."
        ),
    ] = True,
    snapshot: Annotated[
        Path | None, typer.Option(help="Train from a saved snapshot instead of Neo4j.")
    ] = None,
    task: Annotated[str, typer.Option(help=TASK_HELP)] = "user",
    budget: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="User task, best: seconds the selection aims to end within; the GNNs train "
            "in what the other candidates leave (default: the train_budget_s setting, 300; "
            "0: no budget).",
        ),
    ] = None,
) -> None:
    """Export the graph, train with early stopping, test on the held-out period, write back."""
    _check_task(task)
    if task == "session":
        from cli._session import train_session

        train_session(model=model, epochs=epochs, snapshot_path=snapshot)
        return
    if task == "playlist":
        from cli._playlist import train_playlist

        train_playlist(model=model, epochs=epochs, snapshot=snapshot)
        return
    model = model or "best"
    if snapshot is not None and not writeback:
        run_training(
            model=model,
            epochs=epochs,
            writeback=False,
            k=k,
            snapshot_path=snapshot,
            budget_s=budget,
        )
        return
    with open_driver() as driver:
        run_training(
            model=model,
            epochs=epochs,
            writeback=writeback,
            k=k,
            snapshot_path=snapshot,
            driver=driver,
            budget_s=budget,
        )


def evaluate(
    run: Annotated[str | None, typer.Option(help="Run id (default: the active run).")] = None,
    explanations: Annotated[
        bool, typer.Option("--explanations", help="Also measure explanation faithfulness.")
    ] = False,
    truth: Annotated[
        Path | None, typer.Option(help="Generator folder with truth.json (planted-genre check).")
    ] = None,
    sample: Annotated[
        int, typer.Option(min=5, max=2000, help="Recommendations sampled for deletion fidelity.")
    ] = 60,
    task: Annotated[str, typer.Option(help=TASK_HELP)] = "user",
) -> None:
    """Show a run's test metrics; with --explanations, deletion fidelity and planted truth."""
    _check_task(task)
    if task == "session":
        from cli._session import evaluate_session

        evaluate_session(run=run)
        return
    if task == "playlist":
        from cli._playlist import evaluate_playlist

        evaluate_playlist(run=run)
        return
    quiet_torch()
    info = run_or_active(run)
    console.print(metrics_table({f"{info.model} ({info.run_id})": info.metrics}, "Test metrics"))
    if not explanations:
        return
    import numpy as np

    from gnn.users import explanation_quality, load_trained, prepare, recommend_and_explain

    rec, snap = load_trained(info)
    exp = prepare(
        snap, test_frac=info.config.get("test_frac", 0.2), val_frac=info.config.get("val_frac", 0.1)
    )
    observed = exp.observed("test")
    rng = np.random.default_rng(0)
    users = np.sort(
        rng.choice(snap.num_users, size=min(snap.num_users, max(sample, 50)), replace=False)
    )
    with console.status("explaining recommendations ..."):
        ex = recommend_and_explain(rec, observed, users, k=10)
    with progress_bars() as bar:
        task = bar.add_task("deletion fidelity", total=sample)
        quality = explanation_quality(
            rec,
            observed,
            ex,
            truth_folder=truth,
            sample=sample,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )
    report_explanations(quality)
    (info.path / "explanations.json").write_text(json.dumps(quality, indent=2, default=float))
    console.print(f"saved {info.path / 'explanations.json'}")


def report_explanations(quality: dict[str, Any]) -> None:
    f = quality["fidelity"]
    table = Table(
        title=f"Deletion fidelity ({f['pairs']} recommendations, {f['removed_per_pair']} history songs removed)"
    )
    table.add_column("evidence removed")
    table.add_column("mean score drop", justify="right")
    table.add_column("beats random", justify="right")
    table.add_row(
        "top by our weights (gradient x attention)",
        f"{f['mean_drop_explained']:.4f}",
        f"{f['explained_wins']:.0%}",
    )
    table.add_row(
        "top by raw last-layer attention",
        f"{f['mean_drop_attention']:.4f}",
        f"{f['attention_wins']:.0%}",
    )
    table.add_row("random history songs", f"{f['mean_drop_random']:.4f}", "-")
    console.print(table)
    if "planted_genre" in quality:
        p = quality["planted_genre"]
        console.print(
            f"planted truth: the top explaining genre is one of the user's planted genres for "
            f"{p['top_explaining_genre_in_planted']:.1%} of {p['recommendations']:,} recommendations "
            f"(recommended song's own genre: {p['recommended_songs_primary_genre_in_planted']:.1%}; "
            f"a uniformly random genre: {p['chance_uniform_genre']:.1%})"
        )


#: The headline metrics shown by ``models list``, per task, first found wins.
HEADLINE = {
    "user": ("ndcg@10", "recall@10"),
    "session": ("mrr@20", "hit_rate@20", "mrr@10", "hit_rate@10"),
    "playlist": ("r_precision", "ndcg", "recall@500"),
}


def _headline(task: str, metrics: dict[str, Any]) -> str:
    shown = []
    for key in HEADLINE.get(task, ()):
        value = metrics.get(key)
        if isinstance(value, int | float):
            shown.append(f"{key} {value:.4f}")
        if len(shown) == 2:
            break
    return ", ".join(shown) or "-"


@models_app.command("list")
def list_models() -> None:
    """Runs in the registry, oldest first; * marks the active run of each task."""
    from gnn.core import TASKS, get_active, list_runs

    root = Path(settings().runs_dir)
    active = {get_active(root, task=t) for t in TASKS}
    table = Table(title=f"Runs in {root}")
    for c in ("run", "task", "model", "created", "params", "train s", "test metrics", "active"):
        table.add_column(c)
    for r in list_runs(root):
        table.add_row(
            r.run_id,
            r.task,
            r.model,
            r.created_at[:19],
            f"{r.num_parameters:,}",
            f"{r.train_seconds:.1f}" if r.train_seconds else "-",
            _headline(r.task, r.metrics),
            "*" if r.run_id in active else "",
        )
    console.print(table)


@models_app.command("activate")
def activate(run: Annotated[str, typer.Argument(help="Run id to serve.")]) -> None:
    """Make a run the active one of its task (served by the API)."""
    from gnn.core import set_active

    info = run_or_active(run)
    set_active(Path(settings().runs_dir), info.run_id)
    console.print(f"active {info.task} run: {info.run_id}")


@models_app.command("compare")
def compare(
    models: Annotated[
        str, typer.Option(help="Comma-separated models.")
    ] = "popularity,itemknn,ease,rp3beta,lightgcn,basicgat,enhancedgat",
    truth: Annotated[
        Path | None, typer.Option(help="Generator folder with truth.json: adds the oracle.")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option(help="A saved snapshot instead of Neo4j.")
    ] = None,
    save: Annotated[Path | None, typer.Option(help="Write the table as JSON here.")] = None,
) -> None:
    """Every model through one harness on the same split; the oracle when truth is known."""
    quiet_torch()
    from gnn.graph import load_snapshot
    from gnn.users import compare_models, oracle_from_truth, prepare

    if snapshot is not None:
        snap = load_snapshot(snapshot)
    else:
        with open_driver() as driver:
            snap = export_graph(driver, settings().neo4j_database)
    exp = prepare(snap)
    oracle = oracle_from_truth(snap, truth) if truth else None
    names = [m.strip() for m in models.split(",") if m.strip()]
    with console.status("comparing ...") as status:
        df = compare_models(
            exp,
            names,
            oracle=oracle,
            runs_root=Path(settings().runs_dir),
            progress=lambda n: status.update(f"fitting and evaluating {n} ..."),
        )
    rows = {name: row.to_dict() for name, row in df.iterrows()}
    console.print(
        metrics_table(
            rows,
            "Held-out test period, full ranking",
            extra=("train_seconds", "parameters", "ndcg@10_of_oracle"),
        )
    )
    if save:
        save.write_text(json.dumps(rows, indent=2, default=float))


def recommend(
    user: Annotated[str, typer.Option(help="User id.")],
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each recommendation's reasons.")
    ] = False,
) -> None:
    """A user's recommendations as written to the graph, with reasons."""
    from graphdb import get_registry

    s = settings()
    reg = get_registry()
    with open_driver(s) as driver:
        records, _, _ = driver.execute_query(
            reg.query("explain/recommendations_for_user"),
            user_id=user,
            k=k,
            database_=s.neo4j_database,
        )
    if not records:
        raise NotFound(
            f"no recommendations for user {user!r} in the graph",
            hint="check the id, or run spotify-engine train",
        )
    table = Table(title=f"Recommendations for {user}")
    for c in ("#", "song", "artist", "score"):
        table.add_column(c)
    if explain:
        table.add_column("why")
    for r in records:
        row = [
            str(r["rank"]),
            str(r["song"] or r["song_id"]),
            str(r["artist"] or "-"),
            f"{r['score']:.3f}",
        ]
        if explain:
            row.append(str(r["reason"] or ""))
        table.add_row(*row)
    console.print(table)


def why_recommended(driver: Any, database: str, user: str, song: str) -> Any:
    """The written-back recommendation of ``song`` to ``user`` with its evidence, from Neo4j."""
    from graphdb import get_registry

    records, _, _ = driver.execute_query(
        get_registry().query("explain/why_recommended"),
        user_id=user,
        song_id=song,
        database_=database,
    )
    if not records:
        raise NotFound(
            f"song {song!r} was not recommended to user {user!r}",
            hint=f"see spotify-engine recommend --user {user}",
        )
    return records[0]


def explanation_png(record: Any, user: str, path: Path) -> Path:
    """Draw one written-back explanation (user -> evidence -> song) as a PNG."""
    from gnn.core import plot_explanation_graph

    evidence = [
        (e["kind"], f"{e['label']}: {str(e['name'])[:28]}", float(e["weight"]))
        for e in record["evidence"]
    ]
    if not evidence:
        raise NotFound(f"the recommendation of {record['song']!r} to {user!r} has no evidence")
    return plot_explanation_graph(
        f"User {user}",
        f"{str(record['song'])[:30]}\n(rank {record['rank']})",
        evidence,
        path,
        title=f"Why {record['song']!r} for {user} ({record['model']}, weights from the graph)",
    )


def explain(
    user: Annotated[str, typer.Option(help="User id.")],
    song: Annotated[str, typer.Option(help="Song id.")],
    png: Annotated[
        Path | None,
        typer.Option(help="Also draw the explanation graph (user -> evidence -> song) here."),
    ] = None,
) -> None:
    """Why a song was recommended to a user: the weighted evidence in the graph."""
    s = settings()
    with open_driver(s) as driver:
        r = why_recommended(driver, s.neo4j_database, user, song)
    console.print(
        f"[bold]{r['song']}[/] for {user}: rank {r['rank']}, score {r['score']:.3f} ({r['model']}, run {r['run_id']})"
    )
    console.print(r["reason"] or "", markup=False)
    table = Table()
    for c in ("kind", "evidence", "weight"):
        table.add_column(c)
    for e in r["evidence"]:
        table.add_row(e["kind"], f"{e['label']} {e['name']}", f"{e['weight']:.3f}")
    console.print(table)
    if png is not None:
        console.print(f"explanation graph: {explanation_png(r, user, png)}")
