"""Explanation quality (issue 13): are the written-back reasons faithful to the model, and true?

On a small generator graph (default 300 users, 1,500 songs, 20 genres), each explainable model
(EnhancedGAT: edge-mask gradients; EASE^R and ItemKNN: exact parts of a linear score) is trained
and written back through ``gnn.users.train_and_write_back``, the path every published run takes.
Then, for a sample of recommendations, the evidence written back (``BECAUSE``) is compared with
as many random candidate pieces and, for EnhancedGAT, with the edges of highest raw last-layer
attention (``gnn.users.explanation_fidelity``):

* deletion: the score drop when the evidence is removed, and how often it beats random;
* sufficiency: the share of the score (above the score with every candidate removed) kept when
  only the evidence is kept;
* PyG's model-mode fidelity (the song stays in the user's top 10 or not) and characterization
  score (``torch_geometric.explain.metric.characterization_score``).

Every written-back recommendation is audited against the graph (``graphdb.audit_explanations``:
each evidence kind's fact, the sentence's claims, ``AFFINITY`` = share of plays); the pass
rate must be 100%, also on a Last.fm-shaped log made from the same generator (no genres).
Prints a table and saves ``benchmarks/results/explanations.json``.

    python benchmarks/explanations.py [--users 300] [--sample 100] [--skip-lastfm]

It runs against its own local Neo4j instance (``~/.spotify-engine/neo4j-benchx``, ports
57687/57474 unless ``SPOTIFY_ENGINE_NEO4J_HOME`` / ``_BOLT_PORT`` / ``_HTTP_PORT`` say
otherwise, started when needed) and WIPES it; set NEO4J_URI to use another server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
os.environ.setdefault(
    "SPOTIFY_ENGINE_NEO4J_HOME", str(Path.home() / ".spotify-engine" / "neo4j-benchx")
)
os.environ.setdefault("SPOTIFY_ENGINE_BOLT_PORT", "57687")
os.environ.setdefault("SPOTIFY_ENGINE_HTTP_PORT", "57474")

import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from gnn.graph import export_snapshot  # noqa: E402
from gnn.users import explanation_fidelity, prepare, train_and_write_back  # noqa: E402
from graphdb import LocalServer, audit_explanations, connect, verify, wipe_graph  # noqa: E402
from ingest import SyntheticConfig, generate, ingest  # noqa: E402
from spotify_engine.settings import get_settings  # noqa: E402

MODELS: dict[str, dict[str, Any]] = {
    "enhancedgat": {"epochs": 8, "embedding_dim": 32, "num_threads": 1},
    "ease": {},
    "itemknn": {},
}
LASTFM_MODELS = ("enhancedgat", "ease")


def lastfm_file(folder: Path, path: Path) -> Path:
    """The generator's plays (already in ``folder``) as a Last.fm-1K TSV: user, time, artist
    and track names only, so the graph gets no genres."""
    plays = pd.read_parquet(folder / "plays.parquet")
    songs = pd.read_parquet(folder / "songs.parquet")[["song_id", "name", "artist_id"]]
    artists = pd.read_parquet(folder / "artists.parquet")[["artist_id", "name"]]
    t = plays.merge(songs, on="song_id").merge(artists, on="artist_id", suffixes=("", "_artist"))
    t = t.sort_values(["user_id", "ts"], ascending=[True, False])
    with path.open("w", encoding="utf-8") as f:
        for row in t.itertuples():
            ts = datetime.fromtimestamp(row.ts / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            track = f"{row.name} ({row.song_id})"
            f.write("\t".join([f"user_{row.user_id[1:]}", ts, "", row.name_artist, "", track]))
            f.write("\n")
    return path


def publish(
    driver: Any, db: str, snap: Any, model: str, runs: Path, sample: int, fidelity: bool
) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = train_and_write_back(
        prepare(snap), model, runs_root=runs, driver=driver, database=db, overrides=MODELS[model]
    )
    wb = out.writeback
    assert wb is not None
    row: dict[str, Any] = {
        "model": model,
        "ndcg@10": out.train.metrics.get("ndcg@10"),
        "recommendations": wb.recommendations,
        "evidence_edges": wb.evidence,
        "train_and_write_seconds": round(time.perf_counter() - t0, 1),
    }
    t1 = time.perf_counter()
    audit = audit_explanations(driver, db, run_id=out.train.run.run_id)
    row["truth"] = {
        "recommendations": audit.recommendations,
        "pass_rate": audit.pass_rate,
        "affinity_edges": audit.affinity_edges,
        "affinity_failed_users": audit.affinity_failed_users,
        "violations": audit.counts,
        "examples": audit.violations,
        "seconds": round(time.perf_counter() - t1, 1),
    }
    if fidelity:
        t2 = time.perf_counter()
        row["fidelity"] = explanation_fidelity(
            out.train.recommender, wb.full, wb.explained, sample=sample, seed=0
        )
        row["fidelity"]["seconds"] = round(time.perf_counter() - t2, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--sample", type=int, default=100, help="recommendations per fidelity run")
    ap.add_argument("--skip-lastfm", action="store_true")
    args = ap.parse_args()
    s = get_settings()
    if s.uses_local_server:
        LocalServer(s).install()
        LocalServer(s).start()
    driver = connect(s)
    verify(driver)
    db = s.neo4j_database
    cfg = SyntheticConfig(
        users=args.users, songs=5 * args.users, artists=args.users // 2, genres=20, days=30, seed=3
    )
    results: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wipe_graph(driver, db)
        ingest("synthetic", None, driver=driver, settings=s, out_dir=work / "syn", synthetic=cfg)
        snap = export_snapshot(driver, db)
        graph = {"users": snap.num_users, "songs": snap.num_songs, "plays": snap.num_plays}
        for model in MODELS:
            print(f"synthetic: {model} ...", flush=True)
            row = publish(driver, db, snap, model, work / "runs", args.sample, fidelity=True)
            results.append({"source": "synthetic", **row})
        if not args.skip_lastfm:
            generate(cfg, work / "gen")
            path = lastfm_file(work / "gen", work / "lastfm.tsv")
            wipe_graph(driver, db)
            ingest("lastfm", path, driver=driver, settings=s, out_dir=work / "lfm")
            lsnap = export_snapshot(driver, db)
            for model in LASTFM_MODELS:
                print(f"lastfm: {model} ...", flush=True)
                row = publish(driver, db, lsnap, model, work / "runs", args.sample, fidelity=False)
                results.append({"source": "lastfm", **row})
    driver.close()
    out = {
        "benchmark": "explanations",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        "graph": graph,
        "sample": args.sample,
        "results": results,
        "seconds": round(time.perf_counter() - t_all, 1),
    }
    print()
    print(
        f"{'source/model':<22} {'evidence':<10} {'drop':>7} {'>random':>8} {'>attn':>6} {'suff.':>6} "
        f"{'fid+':>5} {'fid-':>5} {'char.':>6} {'truth':>7}"
    )
    for r in results:
        truth = f"{r['truth']['pass_rate']:.1%}"
        name = f"{r['source']}/{r['model']}"
        fid = r.get("fidelity")
        if fid is None:
            print(
                f"{name:<22} {'-':<10} {'':>7} {'':>8} {'':>6} {'':>6} {'':>5} {'':>5} {'':>6} {truth:>7}"
            )
            continue
        for m in ("ours", "attention", "random"):
            if m not in fid:
                continue
            f = fid[m]
            beats = "-" if m == "random" else f"{f['beats_random']:.0%}"
            attn = (
                f"{f['beats_attention']:.0%}"
                if f["beats_attention"] == f["beats_attention"]
                else "-"
            )
            print(
                f"{name:<22} {m:<10} {f['mean_score_drop']:>7.3f} {beats:>8} {attn:>6} "
                f"{f['sufficiency_median']:>6.2f} {f['fidelity_plus']:>5.2f} "
                f"{f['fidelity_minus']:>5.2f} {f['characterization']:>6.2f} "
                f"{truth if m == 'ours' else '':>7}"
            )
            name = ""
    print(
        "drop: mean score drop when the evidence is removed; >random/>attn: how often that beats "
        "removing as many random / highest-attention pieces; suff.: median share of the score "
        "kept with only the evidence; fid+/fid-: share of recommendations leaving the top 10 "
        "when it is removed / kept alone; truth: audited recommendations passing every check"
    )
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "explanations.json").write_text(json.dumps(out, indent=2, default=float))
    print(f"saved {HERE / 'results' / 'explanations.json'} ({out['seconds']:.0f}s)")


if __name__ == "__main__":
    main()
