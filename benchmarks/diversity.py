"""Diversity control (issue 14 item 4): the effect of ``max_per_artist`` on a user's top 10.

Per generator seed (``--seeds``, default 42,43): 300 users / 3,000 songs / 300 artists loaded
into Neo4j and exported from it, EASE^R (the strongest explainable baseline, its l2 tuned on
validation) fitted on the training plays, each user's top 200 ranked on VALIDATION, then cut
to 10 with at most N songs per artist (N in none, 1, 2, 3) in score order, as the API does
(``api.services.recommendations.cap_per_artist``). Reported per N: NDCG@10 (binary, on the
validation plays), coverage@10 (share of songs in some list) and intra-list artist diversity
(distinct artists / list length, mean over users); mean over seeds. The default the API should
use is the N with the best mean validation NDCG@10, ties to the more diverse one. Saves
``benchmarks/results/diversity.json``.

It wipes the Neo4j instance it connects to (``SPOTIFY_ENGINE_NEO4J_HOME`` and ports; by
default ``~/.spotify-engine/neo4j-bench`` at 27687/27474, as ``quality.py``).

    python benchmarks/diversity.py [--seeds 42,43]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault(
    "SPOTIFY_ENGINE_NEO4J_HOME", str(Path.home() / ".spotify-engine" / "neo4j-bench")
)
os.environ.setdefault("SPOTIFY_ENGINE_BOLT_PORT", "27687")
os.environ.setdefault("SPOTIFY_ENGINE_HTTP_PORT", "27474")

import numpy as np  # noqa: E402

from api.services.recommendations import cap_per_artist  # noqa: E402
from gnn.graph import export_snapshot  # noqa: E402
from gnn.users import EASE, prepare  # noqa: E402
from graphdb import LocalServer, apply_schema, connect, verify, wipe_graph  # noqa: E402
from ingest import SyntheticConfig, ingest  # noqa: E402
from spotify_engine.settings import get_settings  # noqa: E402

CAPS: tuple[int | None, ...] = (None, 1, 2, 3)
K = 10
CANDIDATES = 200


def _ndcg(ranked: list[int], relevant: set[int]) -> float:
    dcg = sum(1.0 / np.log2(r + 2) for r, s in enumerate(ranked) if s in relevant)
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), K)))
    return dcg / ideal


def run_seed(driver, settings, seed: int, folder: Path) -> dict:
    db = settings.neo4j_database
    wipe_graph(driver, db)
    apply_schema(driver, db)
    cfg = SyntheticConfig(users=300, songs=3000, artists=300, mean_plays_per_user=200, seed=seed)
    ingest("synthetic", None, driver=driver, settings=settings, out_dir=folder, synthetic=cfg)
    snap = export_snapshot(driver, db)
    exp = prepare(snap)
    rec = EASE()
    rec.fit(exp.train, val=(exp.train, exp.val_relevant))
    users = np.array([u for u in range(snap.num_users) if len(exp.val_relevant[u])])
    ids, scores = rec.recommend(users, min(CANDIDATES, snap.num_songs), exp.train)
    artist_of = np.full(snap.num_songs, -1, dtype=np.int64)
    artist_of[snap.song_artist[0]] = snap.song_artist[1]
    out: dict[str, dict[str, float]] = {}
    for cap in CAPS:
        ndcg, ild, seen = [], [], set()
        for row, u in enumerate(users.tolist()):
            cand = [
                int(i)
                for i, s in zip(ids[row], scores[row], strict=True)
                if i >= 0 and np.isfinite(s)
            ]
            top = cap_per_artist(
                cand, lambda i: int(artist_of[i]) if artist_of[i] >= 0 else None, cap, K
            )
            ndcg.append(_ndcg(top, set(exp.val_relevant[u].tolist())))
            ild.append(len({int(artist_of[i]) for i in top}) / max(len(top), 1))
            seen.update(top)
        out[str(cap)] = {
            "ndcg@10": float(np.mean(ndcg)),
            "coverage@10": len(seen) / snap.num_songs,
            "artist_diversity@10": float(np.mean(ild)),
        }
    return {"users": int(len(users)), "songs": int(snap.num_songs), "caps": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="42,43")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    settings = get_settings()
    if settings.uses_local_server:
        server = LocalServer(settings)
        server.install()
        server.start()
    driver = connect(settings)
    verify(driver)
    t0 = time.perf_counter()
    per_seed = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            per_seed[str(seed)] = run_seed(driver, settings, seed, Path(tmp) / str(seed))
    driver.close()
    mean = {
        str(cap): {
            m: float(np.mean([per_seed[s]["caps"][str(cap)][m] for s in per_seed]))
            for m in ("ndcg@10", "coverage@10", "artist_diversity@10")
        }
        for cap in CAPS
    }
    best = max(mean, key=lambda c: (round(mean[c]["ndcg@10"], 4), mean[c]["artist_diversity@10"]))
    result = {
        "task": "user top-10, EASE^R, validation plays",
        "seeds": seeds,
        "per_seed": per_seed,
        "mean": mean,
        "best_on_validation": best,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"{'max_per_artist':>15} {'ndcg@10':>8} {'coverage':>9} {'artist_div':>10}")
    for cap, m in mean.items():
        print(
            f"{cap:>15} {m['ndcg@10']:8.4f} {m['coverage@10']:9.4f} {m['artist_diversity@10']:10.4f}"
        )
    print(f"best on validation: {best}")
    path = HERE / "results" / "diversity.json"
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
