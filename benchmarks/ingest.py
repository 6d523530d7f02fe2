"""Ingest benchmark: ~600k synthetic plays through the online loader, then a no-op re-run.

    python benchmarks/ingest.py [--users 2000 --songs 20000 --artists 2000 --plays-per-user 300]
                                [--bulk] [--no-warmup]

WIPES the graph of the configured Neo4j (``graphdb.wipe_graph``) before loading: point the
environment at an instance of your own (``SPOTIFY_ENGINE_NEO4J_HOME``, ``..._BOLT_PORT``).
It refuses the default demo instance unless ``--yes`` is given.

A small warm-up load runs first (then wiped), so that the timed load measures the server's
steady state rather than its JIT compiling the write path; ``--no-warmup`` times a cold server.

Reports wall time per phase (generate, and each loader phase from ``LoadResult.seconds``),
rows/s and relationships/s, the peak RSS of this Python process, and the time of re-running
the same batch (answered from the loader's batch record). Prints a table and writes
``benchmarks/results/ingest.json``.

Relationships are counted two ways over the whole load (``load_total`` seconds):
``relationships_created`` is the server's own counter (what the graph gains), and
``relationships_written`` adds the existing relationships a load updated (aggregates met
again in a later chunk, entity links set again): ``relationships_per_s`` is written / s,
``relationships_created_per_s`` is created / s.

``--bulk`` then replaces the graph by a bulk import of the same folder
(``ingest._bulk.bulk_import``: CSV files, ``neo4j-admin database import full``, restart,
schema; local server only) and adds its seconds and rates under ``bulk``, with the speed-up over
the online load and whether both paths gave the same counts per label and type.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name shadows the
# ``ingest`` package; drop the folder so ``import ingest`` finds the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from graphdb import connect, graph_stats, verify, wipe_graph  # noqa: E402
from ingest import BulkResult, Loader, SyntheticConfig, bulk_import, ingest  # noqa: E402
from spotify_engine.settings import Settings  # noqa: E402

RESULTS = _HERE / "results" / "ingest.json"
console = Console()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def server_memory(settings: Settings) -> dict[str, str]:
    """Heap and page cache the local server runs with (from its neo4j.conf), else the settings."""
    conf = settings.local_home / "conf" / "neo4j.conf"
    out = {"heap": settings.heap_size, "pagecache": settings.pagecache_size}
    if settings.uses_local_server and conf.is_file():
        for line in conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "server.memory.heap.max_size":
                out["heap"] = value.strip()
            elif key.strip() == "server.memory.pagecache.size":
                out["pagecache"] = value.strip()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--songs", type=int, default=20000)
    ap.add_argument("--artists", type=int, default=2000)
    ap.add_argument("--plays-per-user", type=int, default=300)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--force-rerun", action="store_true", help="also time a forced re-run")
    ap.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="time the load on a cold server (default: a small warm-up load first)",
    )
    ap.add_argument(
        "--bulk",
        action="store_true",
        help="then bulk-import the same folder with neo4j-admin and report it beside",
    )
    ap.add_argument("--yes", action="store_true", help="allow wiping the default instance")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    settings = Settings()
    default_home = settings.home.expanduser() / "neo4j"
    if settings.uses_local_server and settings.local_home == default_home and not args.yes:
        console.print(
            f"refusing to wipe the default instance ({settings.local_home}, {settings.uri}); "
            "set SPOTIFY_ENGINE_NEO4J_HOME / SPOTIFY_ENGINE_BOLT_PORT to your own or pass --yes"
        )
        return 2
    if args.bulk and not settings.uses_local_server:
        console.print("--bulk needs the locally managed server (unset NEO4J_URI)")
        return 2
    config = SyntheticConfig(
        users=args.users,
        songs=args.songs,
        artists=args.artists,
        mean_plays_per_user=args.plays_per_user,
        seed=args.seed,
    )
    batch_size = args.batch_size or settings.batch_size
    db = settings.neo4j_database
    phase_started: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in phase_started:
            phase_started[stage] = time.perf_counter()
            console.log(f"{stage} ...")
        if done >= total:
            console.log(f"{stage}: {total:,} in {time.perf_counter() - phase_started[stage]:.1f}s")

    driver = connect(settings)
    try:
        verify(driver)
        warmup_s = None
        if args.warmup:
            # A server that just started runs its write path interpreted until the JIT has
            # compiled it; a small load first makes the timed one measure the steady state.
            console.log("warm-up: a small load, then wiped")
            t0 = time.perf_counter()
            wipe_graph(driver, db)
            with tempfile.TemporaryDirectory(prefix="ingest-warmup-") as tmp:
                small = SyntheticConfig(users=300, songs=3000, artists=300, seed=args.seed + 1)
                ingest(
                    "synthetic",
                    driver=driver,
                    settings=settings,
                    out_dir=Path(tmp) / "synthetic",
                    synthetic=small,
                    batch_size=batch_size,
                )
            warmup_s = time.perf_counter() - t0
        console.log(f"wiping {settings.uri} database {db}")
        t0 = time.perf_counter()
        wipe_graph(driver, db)
        wipe_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
            folder = Path(tmp) / "synthetic"
            outcome = ingest(
                "synthetic",
                driver=driver,
                settings=settings,
                out_dir=folder,
                synthetic=config,
                batch_size=batch_size,
                progress=progress,
            )
            rss_after_load = peak_rss_mib()
            load = outcome.load
            assert load is not None and not load.skipped
            loader = Loader(driver, db, batch_size=batch_size)
            t0 = time.perf_counter()
            rerun = loader.load(folder, source="synthetic")
            rerun_s = time.perf_counter() - t0
            forced_s = None
            if args.force_rerun:
                t0 = time.perf_counter()
                forced = loader.load(folder, source="synthetic", force=True)
                forced_s = time.perf_counter() - t0
                assert forced.sessions_new == 0
            stats = graph_stats(driver, db)
            bulk: BulkResult | None = None
            if args.bulk:
                console.log("bulk import of the same folder (replaces the online graph)")
                bulk = bulk_import(
                    folder,
                    settings,
                    driver=driver,
                    source="synthetic",
                    force_overwrite=True,
                    progress=lambda phase, done, total: progress(f"bulk:{phase}", done, total),
                )
                bulk_stats = graph_stats(driver, db)
    finally:
        driver.close()

    memory = server_memory(settings)
    load_s = outcome.seconds["load"]
    rows_written = sum(load.rows.values())
    plays = load.rows.get("plays", 0)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "neo4j_heap": memory["heap"],
            "neo4j_pagecache": memory["pagecache"],
        },
        "config": {
            "users": config.users,
            "songs": config.songs,
            "artists": config.artists,
            "mean_plays_per_user": config.mean_plays_per_user,
            "seed": config.seed,
            "batch_size": batch_size,
        },
        "rows": dict(outcome.report.rows),
        "seconds": {
            "warmup": None if warmup_s is None else round(warmup_s, 2),
            "wipe": round(wipe_s, 2),
            "generate": round(outcome.seconds["parse"], 2),
            "load_total": round(load_s, 2),
            "load_overhead": round(load_s - load.total_seconds, 2),
            **{f"load:{k}": round(v, 2) for k, v in load.seconds.items()},
        },
        "rates": {
            "rows_per_s": round(rows_written / load_s),
            "plays_per_s": round(plays / load.seconds["plays"]) if plays else None,
            "relationships_per_s": round(load.relationships / load_s),
            "relationships_created_per_s": round(load.relationships_created / load_s),
        },
        "relationships_counted": (
            "written = created + updated over load_total seconds; created is the server's "
            "counter, updated are existing aggregates (LISTENED, FOLLOWED_BY) added to and "
            "entity links set again"
        ),
        "sessions": load.sessions_new,
        "relationships_written": load.relationships,
        "relationships_created": load.relationships_created,
        "relationships_updated": load.relationships_updated,
        "graph": {"nodes": stats.labels, "relationships": stats.relationships},
        "peak_rss_mib": round(rss_after_load, 1),
        "rerun": {
            "skipped": rerun.skipped,
            "seconds": round(rerun_s, 2),
            "rows_per_s": round(rows_written / rerun_s),
        },
        "forced_rerun_seconds": None if forced_s is None else round(forced_s, 2),
    }
    if bulk is not None:
        result["bulk"] = {
            "seconds": {
                **{k: round(v, 2) for k, v in bulk.seconds.items()},
                "offline": round(bulk.offline_seconds, 2),
                "total": round(bulk.total_seconds, 2),
            },
            "rates": {
                step: {k: round(v) for k, v in rate.items() if k != "seconds"}
                for step, rate in bulk.rates.items()
            },
            "nodes": bulk.nodes,
            "relationships_written": bulk.relationships,
            "csv_mib": round(bulk.csv_bytes / 2**20, 1),
            "speedup_vs_online_load": {
                "import": round(load_s / bulk.import_seconds, 1),
                "offline": round(load_s / bulk.offline_seconds, 1),
                "total": round(load_s / bulk.total_seconds, 1),
            },
            # the IngestLock node is the online loader's bookkeeping (every loader
            # transaction takes it); the bulk path writes no such node
            "same_counts_as_online": bulk_stats.relationships == stats.relationships
            and {k: v for k, v in bulk_stats.labels.items() if k != "IngestLock"}
            == {k: v for k, v in stats.labels.items() if k != "IngestLock"},
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    table = Table(title=f"Ingest benchmark ({plays:,} plays, batch {batch_size:,})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in result["seconds"].items():
        table.add_row(f"seconds: {k}", "-" if v is None else f"{v:.2f}")
    table.add_row("rows written / s", f"{result['rates']['rows_per_s']:,}")
    if plays:
        table.add_row("plays / s (plays phase)", f"{result['rates']['plays_per_s']:,}")
    table.add_row("relationships written / s", f"{result['rates']['relationships_per_s']:,}")
    table.add_row(
        "relationships created / s", f"{result['rates']['relationships_created_per_s']:,}"
    )
    table.add_row(
        "relationships written (created + updated)",
        f"{load.relationships:,} ({load.relationships_created:,} + {load.relationships_updated:,})",
    )
    table.add_row("sessions", f"{load.sessions_new:,}")
    table.add_row("peak RSS (Python)", f"{result['peak_rss_mib']:,.0f} MiB")
    table.add_row("re-run (skipped)", f"{rerun_s:.2f} s, skipped={rerun.skipped}")
    if forced_s is not None:
        table.add_row("forced re-run", f"{forced_s:.2f} s")
    if bulk is not None:
        for step, rate in bulk.rates.items():
            table.add_row(
                f"bulk {step}: seconds, rows / s, rels / s",
                f"{rate['seconds']:.2f}, {rate['rows_per_s']:,.0f}, "
                f"{rate['relationships_per_s']:,.0f}",
            )
        table.add_row("bulk: same counts as online", str(result["bulk"]["same_counts_as_online"]))
    console.print(table)
    console.print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
