"""Write-back speed: 2,000 users x 10 recommendations x 5 evidence edges (target < 30 s).

Loads a small synthetic graph (2,000 users, 20,000 songs; few plays, since only the nodes
matter here) unless it is already there, then writes one run of recommendations with five
weighted evidence edges each, plus SIMILAR_TO and AFFINITY edges, twice: the second write
replaces the first (the path every retraining takes). Prints a table and saves
``benchmarks/results/writeback.json``.

    python benchmarks/writeback.py

It runs against its own local Neo4j instance (``~/.spotify-engine/neo4j-bench``, ports
27687/27474, started when needed) and WIPES it first; set NEO4J_URI to use another server.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
os.environ.setdefault(
    "SPOTIFY_ENGINE_NEO4J_HOME", str(Path.home() / ".spotify-engine" / "neo4j-bench")
)
os.environ.setdefault("SPOTIFY_ENGINE_BOLT_PORT", "27687")
os.environ.setdefault("SPOTIFY_ENGINE_HTTP_PORT", "27474")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from graphdb import (  # noqa: E402
    Evidence,
    LocalServer,
    RecommendationRow,
    Writeback,
    apply_schema,
    connect,
    verify,
    wipe_graph,
)
from ingest import Loader, SyntheticConfig, generate  # noqa: E402
from spotify_engine.settings import get_settings  # noqa: E402

USERS, SONGS, ARTISTS, K, EVIDENCE = 2000, 20000, 2000, 10, 5


def main() -> None:
    s = get_settings()
    if s.uses_local_server:
        LocalServer(s).install()
        LocalServer(s).start()
    driver = connect(s)
    verify(driver)
    db = s.neo4j_database
    wipe_graph(driver, db)
    apply_schema(driver, db)  # a fresh server has no indexes: MATCH by id would scan
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SyntheticConfig(
            users=USERS, songs=SONGS, artists=ARTISTS, mean_plays_per_user=20, seed=7
        )
        generate(cfg, Path(tmp))
        t0 = time.perf_counter()
        Loader(driver, db).load(Path(tmp), source="benchmark-writeback")
        load_s = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    users = [f"U{i:05d}" for i in range(1, USERS + 1)]
    songs = [f"S{i:06d}" for i in range(1, SONGS + 1)]
    genres = [f"G{i:02d}" for i in range(1, 36)]
    artists = [f"A{i:04d}" for i in range(1, ARTISTS + 1)]

    def rows(run: str) -> list[RecommendationRow]:
        out = []
        for u in users:
            recs = rng.choice(SONGS, size=K, replace=False)
            for r, i in enumerate(recs):
                ev = [
                    Evidence("Song", songs[int(rng.integers(SONGS))], "played", 0.3),
                    Evidence("Song", songs[int(rng.integers(SONGS))], "played", 0.2),
                    Evidence("Genre", genres[int(rng.integers(35))], "genre_affinity", 0.2),
                    Evidence("Artist", artists[int(rng.integers(ARTISTS))], "artist", 0.2),
                    Evidence("User", users[int(rng.integers(USERS))], "similar_user", 0.1),
                ][:EVIDENCE]
                out.append(
                    RecommendationRow(
                        u, songs[int(i)], r + 1, float(K - r), ev, reason=f"{run} #{r + 1}"
                    )
                )
        return out

    results = []
    for run in ("bench-run-1", "bench-run-2"):
        data = rows(run)
        wb = Writeback(driver, db, run_id=run, model="benchmark")
        t0 = time.perf_counter()
        res = wb.recommendations(data)
        rec_s = time.perf_counter() - t0
        sim = [(songs[a], songs[int(b)], 0.5) for a in range(SONGS) for b in rng.choice(SONGS, 10)]
        aff = [(u, genres[int(g)], 0.2) for u in users for g in rng.choice(35, 5, replace=False)]
        t1 = time.perf_counter()
        n_sim = wb.similar_songs(sim)
        n_aff = wb.affinities(aff)
        extra_s = time.perf_counter() - t1
        rels = res.recommendations * 3 + res.evidence  # RECEIVED, OF, RECOMMENDED + BECAUSE
        results.append(
            {
                "run": run,
                "users": res.users,
                "recommendations": res.recommendations,
                "evidence_edges": res.evidence,
                "recommendations_seconds": round(rec_s, 2),
                "relationships_per_s": round(rels / rec_s),
                "similar_to": n_sim,
                "affinity": n_aff,
                "similar_and_affinity_seconds": round(extra_s, 2),
            }
        )
    driver.close()
    out = {
        "benchmark": "writeback",
        "target": "2,000 users x 10 recommendations x 5 evidence edges in under 30 s",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        "setup_load_seconds": round(load_s, 1),
        "results": results,
        "peak_rss_mib": round(psutil.Process().memory_info().rss / 2**20, 1),
    }
    print(f"{'run':<12} {'recs':>7} {'evidence':>9} {'seconds':>8} {'rels/s':>8} {'sim+aff s':>10}")
    for r in results:
        print(
            f"{r['run']:<12} {r['recommendations']:>7,} {r['evidence_edges']:>9,} "
            f"{r['recommendations_seconds']:>8.2f} {r['relationships_per_s']:>8,} "
            f"{r['similar_and_affinity_seconds']:>10.2f}"
        )
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "writeback.json").write_text(json.dumps(out, indent=2))
    print(f"saved {HERE / 'results' / 'writeback.json'}")


if __name__ == "__main__":
    main()
