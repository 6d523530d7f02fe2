"""Benchmark: Neo4j -> GraphSnapshot export rate (edges/s).

Generates a synthetic data set (default 2,000 users, 20,000 songs, ~600,000 plays), loads it
into the configured Neo4j (``Settings`` from the environment; the load is skipped when the
graph already holds the same ingest batch), then times ``export_snapshot`` in a fresh child
process, so that the peak RSS it reports belongs to the export and not to generating or loading.
Edges counted = plays + song-artist + song-genre + artist-genre + playlist-song.

Prints a summary and writes ``benchmarks/results/export.json``::

    python benchmarks/export.py [--runs 3] [--workers 2] [--compare-pure-python]

``--compare-pure-python`` also times the export with the driver's pure-Python PackStream
(the child hides ``neo4j-rust-ext`` from the import system; nothing is uninstalled).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "export.json"

# Run as a script, this folder is first on sys.path, where benchmarks/ingest.py would shadow
# the ingest package.
if sys.path and Path(sys.path[0] or ".").resolve() == RESULTS.parent.parent:
    sys.path.pop(0)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _peak_rss_mib() -> float:
    """This process's peak RSS. ``VmHWM`` rather than ``ru_maxrss``, which Linux carries over
    from the parent across exec (the parent generated and loaded the data)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _server_process(settings: Any) -> Any:
    """The local Neo4j server's process (psutil), when this machine runs it."""
    try:
        import psutil

        from graphdb import LocalServer

        pid = LocalServer(settings).status().pid
        return psutil.Process(pid) if pid else None
    except Exception:  # noqa: BLE001 - CPU accounting is optional
        return None


def _cpu_seconds(proc: Any) -> float | None:
    if proc is None:
        return None
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except Exception:  # noqa: BLE001 - the server may have gone
        return None


def _per_cpu(edges: int, cpu: list[dict[str, float | None]]) -> int | None:
    """Edges per CPU-second (client + server) of the cheapest run: a cost that does not depend
    on how busy the machine was, unlike wall time."""
    totals = [
        c["client_cpu_s"] + c["server_cpu_s"]  # type: ignore[operator]
        for c in cpu
        if c["server_cpu_s"] is not None
    ]
    return round(edges / min(totals)) if totals else None


def measure(runs: int, workers: int, pure_python: bool) -> dict[str, Any]:
    """Child process: time ``runs`` exports and report peak RSS (this process only)."""
    if pure_python:
        sys.modules["neo4j._rust"] = None  # type: ignore[assignment]  # force the fallback codec
    import neo4j._codec.packstream.v1 as packstream

    from gnn.graph import count_edges, export_snapshot
    from graphdb import connect, verify
    from spotify_engine.settings import get_settings

    settings = get_settings()
    driver = connect(settings)
    verify(driver)
    server = _server_process(settings)
    rss_before = _peak_rss_mib()
    seconds: list[float] = []
    cpu: list[dict[str, float | None]] = []
    phases: list[dict[str, float]] = []
    snap = None
    try:
        for _ in range(runs):
            marks: dict[str, float] = {}
            server_cpu = _cpu_seconds(server)
            client_cpu = time.process_time()
            t0 = time.perf_counter()

            def progress(
                phase: str, done: int, total: int, t0: float = t0, m: dict = marks
            ) -> None:
                if done >= total:
                    m[phase] = round(time.perf_counter() - t0, 4)

            snap = export_snapshot(
                driver, settings.neo4j_database, progress=progress, workers=workers
            )
            seconds.append(time.perf_counter() - t0)
            after = _cpu_seconds(server)
            cpu.append(
                {
                    "client_cpu_s": round(time.process_time() - client_cpu, 4),
                    "server_cpu_s": None
                    if after is None or server_cpu is None
                    else round(after - server_cpu, 4),
                }
            )
            phases.append(marks)
    finally:
        driver.close()
    assert snap is not None
    edges = count_edges(snap)
    best, median = min(seconds), statistics.median(seconds)
    return {
        "codec": "python" if pure_python else ("rust" if packstream._rust_unpack else "python"),
        "runs": runs,
        "workers": workers,
        "seconds": [round(s, 4) for s in seconds],
        "best_s": round(best, 4),
        "median_s": round(median, 4),
        "edges": edges,
        "edges_per_s_best": round(edges / best),
        "edges_per_s_median": round(edges / median),
        "phase_done_at_s": phases,
        "cpu": cpu,
        "edges_per_cpu_s_best": _per_cpu(edges, cpu),
        "counts": {
            "users": snap.num_users,
            "songs": snap.num_songs,
            "artists": snap.num_artists,
            "genres": snap.num_genres,
            "playlists": snap.num_playlists,
            "plays": snap.num_plays,
            "song_artist": int(snap.song_artist.shape[1]),
            "song_genre": int(snap.song_genre.shape[1]),
            "artist_genre": int(snap.artist_genre.shape[1]),
            "playlist_song": int(snap.playlist_song.shape[1]),
        },
        "rss_after_imports_mib": round(rss_before, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "snapshot_id": snap.snapshot_id(),
    }


def _child(runs: int, workers: int, pure_python: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--measure", "--runs", str(runs), "--workers", str(workers)]
    if pure_python:
        cmd.append("--pure-python")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--songs", type=int, default=20000)
    ap.add_argument("--artists", type=int, default=2000)
    ap.add_argument("--plays-per-user", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--compare-pure-python", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pure-python", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.runs, args.workers, args.pure_python)))
        return

    from graphdb import apply_schema, connect, graph_stats, verify
    from ingest import Loader, SyntheticConfig, generate
    from spotify_engine.settings import get_settings

    settings = get_settings()
    config = SyntheticConfig(
        users=args.users,
        songs=args.songs,
        artists=args.artists,
        mean_plays_per_user=args.plays_per_user,
    )
    driver = connect(settings)
    try:
        verify(driver)
        apply_schema(driver, settings.neo4j_database)
        with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
            t = time.perf_counter()
            summary = generate(config, Path(tmp))
            gen_s = time.perf_counter() - t
            print(f"generated {dict(summary.rows)} in {gen_s:.1f}s")
            t = time.perf_counter()
            loaded = Loader(driver, settings.neo4j_database).load(Path(tmp), source="synthetic")
            load_s = time.perf_counter() - t
        print(
            f"load: {'skipped (batch already in the graph)' if loaded.skipped else 'done'}"
            f" in {load_s:.1f}s"
        )
        stats = graph_stats(driver, settings.neo4j_database)
        server = driver.get_server_info().agent
    finally:
        driver.close()

    results = [_child(args.runs, args.workers, pure_python=False)]
    if args.compare_pure_python:
        results.append(_child(args.runs, args.workers, pure_python=True))
    report: dict[str, Any] = {
        "benchmark": "export_snapshot",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "users": args.users,
            "songs": args.songs,
            "artists": args.artists,
            "mean_plays_per_user": args.plays_per_user,
            "seed": config.seed,
        },
        "load": {"skipped": loaded.skipped, "seconds": round(load_s, 2), "batch": loaded.batch_id},
        "graph": {"labels": stats.labels, "relationships": stats.relationships},
        "results": results,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "neo4j_server": server,
            "neo4j_driver": _version("neo4j"),
            "neo4j_rust_ext": _version("neo4j-rust-ext"),
            "numpy": _version("numpy"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for r in results:
        print(
            f"export ({r['codec']} codec, {r['workers']} workers): {r['edges']:,} edges; "
            f"best {r['best_s']:.3f}s = {r['edges_per_s_best']:,.0f} edges/s; "
            f"median {r['median_s']:.3f}s = {r['edges_per_s_median']:,.0f} edges/s; "
            f"{r['edges_per_cpu_s_best'] or 0:,} edges per CPU-second (client + server); "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    print(f"load average {report['machine']['load_average_1_5_15']}; wrote {args.out}")


if __name__ == "__main__":
    main()
