"""API load: requests/s and p50/p95/p99 latency under 32 concurrent clients (issue 6).

Builds a synthetic graph through the project's pipeline (ingest -> export -> EnhancedGAT ->
write-back for three users in four; the fourth is scored live), starts ``spotify-engine
serve`` in a subprocess, and drives it from a separate process with an aiohttp client:
``--clients`` concurrent connections for ``--seconds`` per scenario after a short warm-up.
Scenarios: precomputed recommendations (with the API's TTL cache, and with it off), live
recommendations (cache off: every request scores; live explanations are off by default, see
SPOTIFY_ENGINE_API_LIVE_EXPLAIN), precomputed with the rules (two excluded artists, a genre,
``max_per_artist=2``), fold-in (200 listeners created after training, cache off: every request
reads the user's plays and scores them; once with an EASE^R run active in its own runs folder,
once with the EnhancedGAT run, ``recommendations_fold_in_gnn``),
explanation, similar songs, next song. A request counts when it completes inside the
measured window.
Target on the 2-core machine with Neo4j beside: >= 500 requests/s and p99 <= 50 ms for
precomputed recommendations, zero errors. Prints a table and saves
``benchmarks/results/api_load.json``.

    python benchmarks/api_load.py [--seconds 30] [--clients 32] [--workers 1] [--reuse]
        [--only recommendations_rules]

``--only`` measures the named scenarios (in every mode the plan runs them in) and replaces
their figures in an existing ``--out`` file, keeping the others; each figure carries the time
it was measured (``measured_at``).

It runs against its own local Neo4j instance (``~/.spotify-engine/neo4j-bench``, ports
27687/27474, started when needed) and WIPES it first (unless ``--reuse``); set NEO4J_URI to
use another server. Only localhost is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
os.environ.setdefault(
    "SPOTIFY_ENGINE_NEO4J_HOME", str(Path.home() / ".spotify-engine" / "neo4j-bench")
)
os.environ.setdefault("SPOTIFY_ENGINE_BOLT_PORT", "27687")
os.environ.setdefault("SPOTIFY_ENGINE_HTTP_PORT", "27474")

import numpy as np  # noqa: E402

USERS, SONGS, ARTISTS = 1000, 5000, 500
#: Listeners created after training, scored by fold-in (``recommendations_fold_in``).
FOLD_USERS = 200
#: The benchmark's world (graph files, runs, logs); SPOTIFY_ENGINE_BENCH_API_DIR moves it.
WORK = Path(
    os.environ.get("SPOTIFY_ENGINE_BENCH_API_DIR", Path.home() / ".spotify-engine" / "bench-api")
)


def build(driver: Any, settings: Any, *, epochs: int) -> dict[str, Any]:
    """Synthetic graph, a trained active run, write-back for users not divisible by 4."""
    from gnn.graph import export_snapshot
    from gnn.users import prepare, train_and_write_back
    from graphdb import apply_schema, wipe_graph
    from ingest import SyntheticConfig, ingest

    db = settings.neo4j_database
    wipe_graph(driver, db)
    apply_schema(driver, db)
    t0 = time.perf_counter()
    ingest(
        "synthetic",
        None,
        driver=driver,
        settings=settings,
        out_dir=WORK / "data",
        synthetic=SyntheticConfig(users=USERS, songs=SONGS, artists=ARTISTS, seed=11),
        force=True,
    )
    snap = export_snapshot(driver, db)
    out = train_and_write_back(
        prepare(snap),
        "enhancedgat",
        runs_root=WORK / "runs",
        driver=driver,
        database=db,
        overrides={"epochs": epochs},
        users=np.array([u for u in range(snap.num_users) if u % 4 != 3]),
        k=10,
    )
    res = out.train
    # Fold-in: an EASE^R run active in a runs folder of its own, and FOLD_USERS listeners
    # created after training (their plays loaded as the events endpoint loads them).
    from gnn.users import train_model
    from ingest import Loader

    ease = train_model(prepare(snap), "ease", runs_root=WORK / "runs-foldin").run.run_id
    rng = np.random.default_rng(5)
    rows = []
    for n in range(FOLD_USERS):
        songs = rng.choice(snap.song_ids, size=20, replace=False)
        rows += [
            {"user_id": f"U_FOLD{n:04d}", "song_id": str(x), "session_id": f"fold-{n}",
             "pos": i, "ts": 1_900_000_000_000 + 240_000 * i, "ms_played": 200_000.0,
             "skipped": False}
            for i, x in enumerate(songs)
        ]  # fmt: skip
    import pandas as pd

    Loader(driver, db).load_plays(
        pd.DataFrame(rows), new_users=[f"U_FOLD{n:04d}" for n in range(FOLD_USERS)]
    )
    return {
        "setup_seconds": time.perf_counter() - t0,
        "run_id": res.run.run_id,
        "fold_in_run_id": ease,
    }


def targets(driver: Any, db: str) -> dict[str, Any]:
    """Ids the scenarios draw from (read once, before the load)."""

    def q(text: str) -> list[dict[str, Any]]:
        records, _, _ = driver.execute_query(text, database_=db)
        return [r.data() for r in records]

    fresh = q(
        "MATCH (u:User)-[:RECEIVED]->(r:Recommendation {rank: 1})-[:OF]->(s:Song) "
        "RETURN u.id AS u, s.id AS s"
    )
    live = q(
        "MATCH (u:User)-[:LISTENED]->() WHERE NOT (u)-[:RECEIVED]->() "
        "AND NOT u.id STARTS WITH 'U_FOLD' RETURN DISTINCT u.id AS u"
    )  # users of the training snapshot without stored rows (the fold-in ones are measured apart)
    similar = q("MATCH (s:Song)-[:SIMILAR_TO]->() RETURN DISTINCT s.id AS s LIMIT 2000")
    fold = q("MATCH (u:User) WHERE u.id STARTS WITH 'U_FOLD' RETURN u.id AS u")
    artists = q(
        "MATCH (a:Artist)<-[:BY]-() RETURN a.id AS a, count(*) AS n ORDER BY n DESC LIMIT 20"
    )
    genres = q("MATCH (g:Genre) RETURN g.id AS g ORDER BY g.id")
    followed = q("MATCH (s:Song)-[:FOLLOWED_BY]->() RETURN DISTINCT s.id AS s LIMIT 2000")
    return {
        "fresh": [(r["u"], r["s"]) for r in fresh],
        "live": [r["u"] for r in live],
        "similar": [r["s"] for r in similar],
        "followed": [r["s"] for r in followed],
        "fold": [r["u"] for r in fold],
        "artists": [r["a"] for r in artists],
        "genres": [r["g"] for r in genres],
    }


def scenarios(t: dict[str, Any]) -> dict[str, Any]:
    fresh, live, sim, fol = t["fresh"], t["live"], t["similar"], t["followed"]
    return {
        # the rules of issue 14 on the precomputed path: two excluded artists, a genre, a cap
        "recommendations_rules": lambda r: (
            "GET",
            f"/users/{r.choice(fresh)[0]}/recommendations?k=10&exclude_artists="
            f"{r.choice(t['artists'])}&exclude_artists={r.choice(t['artists'])}"
            f"&genre={r.choice(t['genres'])}&max_per_artist=2",
            None,
        ),
        "recommendations_fold_in": lambda r: (
            "GET",
            f"/users/{r.choice(t['fold'])}/recommendations?k=10",
            None,
        ),
        "recommendations_precomputed": lambda r: (
            "GET",
            f"/users/{r.choice(fresh)[0]}/recommendations?k=10",
            None,
        ),
        "recommendations_live": lambda r: (
            "GET",
            f"/users/{r.choice(live)}/recommendations?k=10",
            None,
        ),
        "explanation": lambda r: (
            "GET",
            "/users/{}/recommendations/{}/explanation".format(*r.choice(fresh)),
            None,
        ),
        "similar_songs": lambda r: ("GET", f"/songs/{r.choice(sim)}/similar?k=10", None),
        "next_song": lambda r: (
            "POST",
            "/sessions/next",
            {"recent_song_ids": r.sample(fol, 3), "k": 10},
        ),
    }


# -- the load generator (its own process, so it does not share the server's event loop) ---------
def _load(
    url: str, name: str, t: dict[str, Any], clients: int, seconds: float, warmup: float, q: Any
) -> None:
    import aiohttp

    make = scenarios(t)[name]

    async def main() -> dict[str, Any]:
        lat: list[float] = []
        errors: dict[str, int] = {}
        conn = aiohttp.TCPConnector(limit=clients)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(url, connector=conn, timeout=timeout) as session:
            start = time.perf_counter()
            measure_from = start + warmup
            stop = measure_from + seconds

            async def client(seed: int) -> None:
                rnd = random.Random(seed)
                while True:
                    now = time.perf_counter()
                    if now >= stop:
                        return
                    method, path, body = make(rnd)
                    t0 = time.perf_counter()
                    try:
                        async with session.request(method, path, json=body) as resp:
                            await resp.read()
                            status = resp.status
                    except Exception as exc:  # noqa: BLE001 - counted as an error
                        status = type(exc).__name__
                    t1 = time.perf_counter()
                    # Completed inside the window (slow endpoints may have started before it).
                    if measure_from <= t1 <= stop:
                        if status == 200:
                            lat.append(t1 - t0)
                        else:
                            errors[str(status)] = errors.get(str(status), 0) + 1

            await asyncio.gather(*(client(i) for i in range(clients)))
        ok = np.array(lat) * 1000
        n_err = sum(errors.values())
        return {
            "requests": int(len(ok) + n_err),
            "ok": int(len(ok)),
            "errors": n_err,
            "error_kinds": errors,
            "requests_per_s": (len(ok) + n_err) / seconds,
            "p50_ms": float(np.percentile(ok, 50)) if len(ok) else None,
            "p95_ms": float(np.percentile(ok, 95)) if len(ok) else None,
            "p99_ms": float(np.percentile(ok, 99)) if len(ok) else None,
            "max_ms": float(ok.max()) if len(ok) else None,
        }

    q.put(asyncio.run(main()))


def run_load(
    url: str, name: str, t: dict[str, Any], clients: int, seconds: float
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_load, args=(url, name, t, clients, seconds, min(3.0, seconds / 5), q))
    p.start()
    out = q.get(timeout=seconds + 120)
    p.join(timeout=30)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"the API did not start:\n{log.read_text()[-3000:]}")


def stop_api(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def out_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
        "users": USERS,
        "songs": SONGS,
        "client": "aiohttp in a separate process",
        "server": "spotify-engine serve (uvicorn, uvloop/httptools when installed)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--reuse", action="store_true", help="keep the graph and run of a previous run")
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios; their figures replace theirs in an existing --out file",
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "api_load.json")
    args = ap.parse_args()

    from graphdb import LocalServer, connect, verify
    from spotify_engine.settings import get_settings

    s = get_settings()
    if s.uses_local_server:
        LocalServer(s).install()
        LocalServer(s).start()
    driver = connect(s)
    verify(driver)
    setup: dict[str, Any] = {"reused": True}
    if not args.reuse or not (WORK / "runs" / "ACTIVE").exists():
        setup = build(driver, s, epochs=args.epochs)
    t = targets(driver, s.neo4j_database)
    driver.close()

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["SPOTIFY_ENGINE_RUNS_DIR"] = str(WORK / "runs")
    env.pop("SPOTIFY_ENGINE_API_KEY", None)
    plan = [
        ("recommendations_precomputed", "cache"),
        ("recommendations_rules", "cache"),
        ("recommendations_precomputed", "nocache"),
        ("recommendations_rules", "nocache"),
        ("recommendations_fold_in", "foldin"),
        ("recommendations_fold_in", "foldin_gnn"),
        ("recommendations_live", "nocache"),
        ("explanation", "cache"),
        ("similar_songs", "cache"),
        ("next_song", "cache"),
    ]
    only = {x for x in args.only.split(",") if x}
    results: dict[str, Any] = {}
    for mode in ("cache", "nocache", "foldin", "foldin_gnn"):
        todo = [n for n, m in plan if m == mode and (not only or n in only)]
        if not todo:
            continue
        env["SPOTIFY_ENGINE_API_CACHE_TTL_S"] = "30" if mode == "cache" else "0"
        # foldin: the EASE^R run of runs-foldin; foldin_gnn: the EnhancedGAT run of runs,
        # which rebuilds the observed graph with the user's plays per request.
        env["SPOTIFY_ENGINE_RUNS_DIR"] = str(WORK / ("runs-foldin" if mode == "foldin" else "runs"))
        proc, url = start_api(env, args.workers, WORK / f"api-{mode}.log")
        try:
            for name in todo:
                key = name + {"nocache": "_nocache", "foldin_gnn": "_gnn"}.get(mode, "")
                r = run_load(url, name, t, args.clients, args.seconds)
                results[key] = r
                print(
                    f"{key:40s} {r['requests_per_s']:8.1f} req/s  p50 {r['p50_ms'] or 0:7.1f} ms  "
                    f"p95 {r['p95_ms'] or 0:7.1f} ms  p99 {r['p99_ms'] or 0:7.1f} ms  "
                    f"errors {r['errors']}",
                    flush=True,
                )
        finally:
            stop_api(proc)

    pre = results.get("recommendations_precomputed")
    verdict = None
    if pre:
        verdict = {
            "target": ">= 500 req/s, p99 <= 50 ms, zero errors (precomputed, cached)",
            "rps_ok": pre["requests_per_s"] >= 500,
            "p99_ok": (pre["p99_ms"] or 1e9) <= 50,
            "errors_ok": pre["errors"] == 0,
        }
        print(f"target {verdict}")
    out = {
        "config": out_config(args),
        "setup": setup,
        "results": results,
        "target": verdict,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "note": "timings on a shared 2-core machine are noisy; rerun on a quiet one",
    }
    for r in results.values():
        r["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    partial = dict(results)
    if only and args.out.is_file():
        # a partial run updates its scenarios in the saved file and keeps the others
        saved = json.loads(args.out.read_text())
        results = {**saved.get("results", {}), **results}
        out = {**saved, "results": results, "target": saved.get("target") or verdict}
        out["partial_runs"] = [
            *saved.get("partial_runs", []),
            {"only": sorted(only), "config": out_config(args), "results": dict(partial)},
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
