"""``spotify-engine demo``: the README's main job, end to end on an embedded default.

Neo4j (the local server unless NEO4J_URI is set) -> synthetic data with planted taste ->
ingest -> export -> every explainable user model (EnhancedGAT with early stopping, EASE^R,
RP3beta, ItemKNN, the EASE^R + RP3beta blend) fitted, the best on validation NDCG@10 served (the
demo says which won and by how much) -> the same split through the other baselines and the planted-truth oracle ->
the served model's recommendations and explanations written back ->
three example users with their reasons, the Browser and guide instructions, the run folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from api import start_api, stop_api
from cli._common import console, open_driver, settings
from graphdb import (
    ComposeNeo4j,
    LocalServer,
    apply_schema,
    get_registry,
    graph_stats,
    neo4j_backend,
    wipe_graph,
)
from spotify_engine.errors import ConfigError

#: Compared on the test table besides the served candidates (never served: not explainable, or
#: not a candidate).
BASELINES = ("popularity", "itemknn", "ease", "rp3beta", "lightgcn")


def demo(
    stop: Annotated[bool, typer.Option("--stop", help="Stop what the demo started.")] = False,
    users: Annotated[int, typer.Option(min=20, help="Synthetic users.")] = 1000,
    songs: Annotated[int, typer.Option(min=100, help="Synthetic songs.")] = 5000,
    artists: Annotated[int, typer.Option(min=10, help="Synthetic artists.")] = 500,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 42,
    epochs: Annotated[int | None, typer.Option(min=1, help="Maximum training epochs.")] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Wipe the local demo database before loading.")
    ] = False,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Compare against the baselines.")
    ] = True,
) -> None:
    """Run the whole product on synthetic data: Neo4j, ingest, train, evaluate, explain."""
    from cli._common import export_graph, metrics_table, quiet_torch
    from cli._models import cap_line, select_and_publish
    from cli._session import winner_line
    from ingest import SyntheticConfig
    from ingest import ingest as run_ingest

    quiet_torch()
    s = settings()
    backend = neo4j_backend(s)
    server = LocalServer(s) if backend == "local" else None
    compose = ComposeNeo4j(s) if backend == "docker" else None
    if stop:
        if stop_api(s):
            console.print("API stopped")
        stopped = (server is not None and server.stop()) or (compose is not None and compose.stop())
        console.print(f"Neo4j stopped ({backend})" if stopped else "Neo4j: nothing to stop")
        return
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = time.perf_counter() - t0

    # 1. Neo4j
    t0 = time.perf_counter()
    if server is not None:
        with console.status(
            "Provisioning Neo4j 5.26 (first time: downloads from Maven Central) ..."
        ):
            server.install()
        with console.status("Starting Neo4j ..."):
            server.start()
    elif compose is not None:
        with console.status("Starting Neo4j 5.26 in Docker (docker compose up neo4j) ..."):
            compose.up()
        s = compose.connection_settings()
    console.print(f"Neo4j: {backend} at {s.uri}")
    step("neo4j", t0)

    config = SyntheticConfig(
        users=users, songs=songs, artists=artists, seed=seed, playlists_per_user=2.0
    )
    data_dir = (
        Path(s.home).expanduser() / "demo" / f"synthetic-{users}u-{songs}s-{artists}a-seed{seed}"
    )
    with open_driver(s) as driver:
        db = s.neo4j_database
        apply_schema(driver, db)
        # 2. Data: generate (deterministic) and load; a re-run finds the batch applied.
        existing = graph_stats(driver, db)
        if fresh:
            if backend == "external":
                raise ConfigError(
                    "--fresh wipes the database; it is only allowed on the local demo server",
                    hint="unset NEO4J_URI, or wipe your database yourself",
                )
            with console.status("Wiping the demo database ..."):
                wipe_graph(driver, db)
        elif existing.labels.get("Session", 0) and not (data_dir / "plays.parquet").exists():
            raise ConfigError(
                "the database already holds other listening data",
                hint="run `spotify-engine demo --fresh` to wipe the local demo database first",
            )
        t0 = time.perf_counter()
        console.rule("[bold]1. Data")
        from cli._ingest import _bars

        with _bars("synthetic") as progress:
            outcome = run_ingest(
                "synthetic",
                None,
                driver=driver,
                settings=s,
                out_dir=data_dir,
                synthetic=config,
                progress=progress,
            )
        step("ingest", t0)
        load = outcome.load
        if load is not None and load.skipped:
            console.print(f"synthetic data already loaded (batch {load.batch_id}); reusing it")
        stats = graph_stats(driver, db)
        console.print(
            f"graph: {stats.nodes:,} nodes, {sum(stats.relationships.values()):,} relationships "
            f"({stats.labels.get('User', 0):,} users, {stats.labels.get('Song', 0):,} songs, "
            f"{stats.relationships.get('PLAYED', 0):,} plays)"
        )

        # 3. Export + train + compare
        console.rule("[bold]2. Train, explain, write back, evaluate")
        from gnn.users import compare_models, oracle_from_truth, prepare

        t0 = time.perf_counter()
        snap = export_graph(driver, db)
        exp = prepare(snap)
        step("export", t0)
        t0 = time.perf_counter()
        overrides: dict[str, Any] = {"epochs": epochs} if epochs else {}
        # Fit every explainable model, serve the best on validation, then recommend, explain
        # and write it back (section 5 shows what was written).
        sel, wb = select_and_publish(
            driver, exp, overrides={"enhancedgat": overrides}, k=10, show_table=False
        )
        res = sel.best
        gat = sel.results.get("enhancedgat")
        timings["writeback"] = wb.explain_seconds + wb.write_seconds
        timings["train"] = time.perf_counter() - t0 - timings["writeback"]
        if gat is not None:
            console.print(
                f"EnhancedGAT: {gat.fit_info.get('epochs')} epochs in {gat.seconds:.0f}s, "
                f"{gat.recommender.num_parameters():,} parameters, run {gat.run.run_id}"
            )
        console.print(
            f"served: {res.recommender.name}, run {res.run.run_id} (the best of "
            f"{', '.join(sel.results)} on validation NDCG@10)"
        )
        console.print(cap_line(res.fit_info))
        table = sel.table()
        rows: dict[str, dict[str, Any]] = {
            (f"{n} *" if n == res.recommender.name else n): r.to_dict() for n, r in table.iterrows()
        }
        if baselines:
            t0 = time.perf_counter()
            oracle = oracle_from_truth(snap, data_dir)
            with console.status("Baselines through the same harness ...") as status:
                df = compare_models(
                    exp,
                    [b for b in BASELINES if b not in sel.results],
                    oracle=oracle,
                    progress=lambda n: status.update(
                        f"Baselines through the same harness: {n} ..."
                    ),
                )
            step("baselines", t0)
            rows.update({name: r.to_dict() for name, r in df.iterrows()})
        if "oracle" in rows:
            for r in rows.values():
                r["ndcg@10_of_oracle"] = r["ndcg@10"] / rows["oracle"]["ndcg@10"]
        console.print(
            metrics_table(
                rows,
                "Held-out test period (last 20% of each user's plays), full ranking over "
                "unplayed songs (* served: best validation NDCG@10)",
                extra=("val_ndcg@10", "train_seconds", "ndcg@10_of_oracle"),
            )
        )
        console.print(winner_line(sel.selection, "user"))

        # 4. The two other paradigms, on the same export
        runs_root = Path(s.runs_dir)
        console.rule("[bold]3. Next song in a session")
        t0 = time.perf_counter()
        _sessions(snap, runs_root, s.torch_threads)
        step("sessions", t0)
        console.rule("[bold]4. Playlist continuation")
        t0 = time.perf_counter()
        _playlists(snap, runs_root)
        step("playlists", t0)

        # 5. Examples
        reg = get_registry()
        examples = [str(u) for u in snap.user_ids[:3]]
        for uid in examples:
            recs, _, _ = driver.execute_query(
                reg.query("explain/recommendations_for_user"), user_id=uid, k=5, database_=db
            )
            table = Table(title=f"Top 5 for {uid}", title_justify="left")
            for c in ("#", "song", "artist", "why"):
                table.add_column(c)
            for r in recs:
                table.add_row(
                    str(r["rank"]), str(r["song"]), str(r["artist"] or "-"), str(r["reason"])
                )
            console.print(table)
        first_song = None
        if examples:
            recs, _, _ = driver.execute_query(
                reg.query("explain/recommendations_for_user"),
                user_id=examples[0],
                k=1,
                database_=db,
            )
            first_song = recs[0]["song_id"] if recs else None

        # 6. Pictures, under the run folder
        t0 = time.perf_counter()
        with console.status("Drawing the pictures (profile, explanation graph, attention) ..."):
            pictures = _pictures(driver, db, res, gat, exp, examples, first_song)
        step("pictures", t0)
        for what, path in pictures.items():
            console.print(f"picture: {what:<12} {path}", highlight=False, soft_wrap=True)

    # 7. The API, in the background, over the same graph and runs
    t0 = time.perf_counter()
    with console.status("Starting the API (spotify-engine serve) ..."):
        api_url = start_api(s)
    step("api", t0)

    timings["total"] = time.perf_counter() - t_start
    run_dir = res.run.path
    guide = (
        f"spotify-engine browser guide --open-user {examples[0]}"
        + (f" --open-song {first_song}" if first_song else "")
        if examples
        else "spotify-engine browser guide"
    )
    where = {
        "local": f"password in {s.password_file}",
        "docker": f"password in {compose.password_file if compose else ''}",
        "external": "password from NEO4J_PASSWORD",
    }[backend]
    console.print(
        Panel.fit(
            f"Neo4j Browser  http://localhost:{s.http_port}/browser/  (user {s.neo4j_user}, {where})\n"
            f"Guide          {guide}\n"
            f"               then in Browser :play http://localhost:8765/guide.html\n"
            f"API            {api_url}/docs  (e.g. curl {api_url}/users/"
            f"{examples[0] if examples else 'U00001'}/recommendations?k=5)\n"
            f"Explain        spotify-engine explain --user {examples[0] if examples else 'U00001'}"
            f" --song {first_song or 'S000001'}\n"
            f"Run folder     {run_dir} (metrics.json, model.pt, *.png, profile/)\n"
            f"Data folder    {data_dir} (tables, truth.json, quarantine, report)\n"
            f"Stop           make demo-stop\n"
            f"Time           " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()),
            title="spotify-engine demo: done",
        )
    )


def _pictures(
    driver: Any,
    db: str,
    res: Any,
    gat: Any,
    exp: Any,
    examples: list[str],
    first_song: str | None,
) -> dict[str, Path]:
    """Data profile plots and the first example's explanation graph, under the served run's
    folder; EnhancedGAT's training curves and attention heat-map when it was fitted (``gat``),
    whichever model is served."""
    from cli._models import explanation_png, why_recommended
    from gnn.core import plot_attention_heatmap
    from gnn.users import user_attention
    from ingest import profile_graph

    run_dir = res.run.path
    out: dict[str, Path] = {}
    for r in (res, gat):
        if r is not None and (r.run.path / "training_curves.png").exists():
            out["curves"] = r.run.path / "training_curves.png"
            break
    profile = profile_graph(driver, db, run_dir / "profile")
    out.update({f"profile {k}": v for k, v in profile.plots.items()})
    if examples and first_song:
        record = why_recommended(driver, db, examples[0], first_song)
        out["explanation"] = explanation_png(record, examples[0], run_dir / "explanation.png")
    if examples and first_song and gat is not None:
        matrix, rows, cols = user_attention(gat.recommender, exp.full(), 0)
        out["attention"] = plot_attention_heatmap(
            matrix,
            rows,
            cols,
            run_dir / "attention.png",
            title=f"Attention of user {examples[0]} over the songs it played (top {len(rows)})",
        )
    return out


def _sessions(snap: Any, runs_root: Path, threads: int) -> None:
    """Every next-song model on held-out sessions; the best by validation MRR@20 is served."""
    from cli._session import SESSION_CHOICES, compare_and_show, winner_line

    gnn = {"threads": threads}
    res, _ = compare_and_show(
        snap, list(SESSION_CHOICES), {"sessiongnn": gnn, "sessionhybrid": dict(gnn)}, runs_root
    )
    console.print(winner_line(res.selection, "next-song"))


def _playlists(snap: Any, runs_root: Path) -> None:
    """Every playlist model through the challenge metrics; the best by validation is served."""
    from cli._playlist import print_results
    from gnn.playlists import train_playlist_models

    with console.status("Playlist continuation: training ...") as status:
        results, split = train_playlist_models(
            snap, runs_root=runs_root, activate="best", progress=lambda m: status.update(m)
        )
    console.print(
        f"playlists: {len(split.train):,} training, {len(split.val):,} validation, "
        f"{len(split.test):,} test; first K tracks revealed, the rest ranked"
    )
    print_results(
        {n: {"val": r.val, "test": r.test, "seconds": r.seconds} for n, r in results.items()}
    )
    from cli._session import winner_line
    from gnn.playlists import playlist_selection

    console.print(winner_line(playlist_selection(results), "playlist"))
