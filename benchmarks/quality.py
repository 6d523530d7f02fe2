"""Recommendation quality: every model through one harness, against the planted-truth oracle.

Two data sets, both loaded into Neo4j and exported from it (the product's real path):

1. ``generator``: our synthetic generator at about 2,000 users / 20,000 songs / 600,000 plays,
   with planted taste (so the oracle is known).
2. ``reference``: the reference project's own data (``../shared/data/reference-synthetic``,
   1,000 users / 5,000 songs / 230,577 plays) through the sessions-CSV reader, so the two
   systems can be compared side by side. Its README reports Recall@10 = 0.38 (claimed) and
   0.035 measured for its GAT under its own (random split) protocol.

Per model: Recall@10, NDCG@10, coverage, distinct songs in users' top-10s, training wall time,
peak RSS of this process; EnhancedGAT's NDCG@10 as a fraction of the best baseline's and of the
oracle's. Prints tables and saves ``benchmarks/results/quality.json``.

It runs against its own local Neo4j instance (``~/.spotify-engine/neo4j-bench``, ports
27687/27474) and wipes it; set NEO4J_URI to use another server (it will be wiped too).

    python benchmarks/quality.py [--datasets generator,reference] [--models ...] [--quick]
    python benchmarks/quality.py --task session [--quick] [--seeds 42,43,44]
        [--datasets generator,lastfm] [--snapshot-cache DIR] [--max-positions N]

``--task session`` runs the next-song table (``_quality_session.py``: data shapes ``generator``
and ``lastfm``, every seed, mean and spread) and saves ``benchmarks/results/quality_session.json``.
``--task playlist`` runs the playlist continuation table instead (``_quality_playlist.py``;
data sets ``generator`` and ``mpd-shaped`` at every seed, ``mpd`` with ``--mpd FOLDER``,
``kaggle`` with ``--kaggle FILE``) and saves ``benchmarks/results/quality_playlist.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
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

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)

import psutil  # noqa: E402

from gnn.graph import export_snapshot  # noqa: E402
from gnn.users import compare_models, oracle_from_truth, prepare  # noqa: E402
from graphdb import LocalServer, apply_schema, connect, verify, wipe_graph  # noqa: E402
from ingest import SyntheticConfig, ingest  # noqa: E402
from spotify_engine.settings import get_settings  # noqa: E402

REFERENCE = HERE.parent.parent / "shared" / "data" / "reference-synthetic"
MODELS = ("popularity", "itemknn", "ease", "lightgcn", "basicgat", "enhancedgat")
BASELINES = ("popularity", "itemknn", "ease", "lightgcn")


def _load(driver, settings, source: str, path: Path | None, folder: Path, synthetic=None) -> float:
    wipe_graph(driver, settings.neo4j_database)
    apply_schema(driver, settings.neo4j_database)
    t0 = time.perf_counter()
    ingest(source, path, driver=driver, settings=settings, out_dir=folder, synthetic=synthetic)
    return time.perf_counter() - t0


def run_dataset(name: str, driver, settings, models: list[str], tmp: Path, quick: bool) -> dict:
    folder = tmp / name
    if name == "generator":
        cfg = (
            SyntheticConfig(users=500, songs=4000, artists=400, mean_plays_per_user=200, seed=42)
            if quick
            else SyntheticConfig(
                users=2000, songs=20000, artists=2000, mean_plays_per_user=300, seed=42
            )
        )
        load_s = _load(driver, settings, "synthetic", None, folder, synthetic=cfg)
    else:
        if not REFERENCE.exists():
            return {"skipped": f"no reference data at {REFERENCE}"}
        load_s = _load(driver, settings, "sessions", REFERENCE, folder)
    t0 = time.perf_counter()
    snap = export_snapshot(driver, settings.neo4j_database)
    export_s = time.perf_counter() - t0
    exp = prepare(snap)
    oracle = oracle_from_truth(snap, folder) if name == "generator" else None
    t0 = time.perf_counter()
    df = compare_models(
        exp, models, oracle=oracle, progress=lambda m: print(f"  [{name}] {m} ...", flush=True)
    )
    df["distinct_top10"] = (df["coverage@10"] * snap.num_songs).round().astype(int)
    rows = {
        m: {k: (float(v) if hasattr(v, "__float__") else v) for k, v in r.items()}
        for m, r in df.iterrows()
    }
    best_base = max((rows[b]["ndcg@10"] for b in BASELINES if b in rows), default=float("nan"))
    summary = {}
    if "enhancedgat" in rows:
        e = rows["enhancedgat"]["ndcg@10"]
        summary["enhancedgat_ndcg10_vs_best_baseline"] = (
            e / best_base if best_base else float("nan")
        )
        if "oracle" in rows:
            summary["enhancedgat_ndcg10_of_oracle"] = e / rows["oracle"]["ndcg@10"]
    return {
        "users": snap.num_users,
        "songs": snap.num_songs,
        "plays": snap.num_plays,
        "evaluated_users": int(next(iter(rows.values()))["n_users"]),
        "load_seconds": round(load_s, 1),
        "export_seconds": round(export_s, 2),
        "compare_seconds": round(time.perf_counter() - t0, 1),
        "models": rows,
        "summary": summary,
    }


def print_table(name: str, res: dict) -> None:
    if "skipped" in res:
        print(f"{name}: skipped ({res['skipped']})")
        return
    print(
        f"\n{name}: {res['users']:,} users, {res['songs']:,} songs, {res['plays']:,} plays; "
        f"{res['evaluated_users']:,} users evaluated (held-out last 20% of plays, full ranking)"
    )
    cols = ("recall@10", "ndcg@10", "coverage@10", "distinct_top10", "train_seconds", "peak_rss_mb")
    print(f"{'model':<12}" + "".join(f"{c:>16}" for c in cols))
    for m, r in res["models"].items():
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append(
                f"{v:>16.4f}"
                if isinstance(v, float) and c not in ("train_seconds", "peak_rss_mb")
                else f"{v:>16,.1f}"
                if isinstance(v, float)
                else f"{v!s:>16}"
            )
        print(f"{m:<12}" + "".join(cells))
    for k, v in res["summary"].items():
        print(f"{k}: {v:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="generator,reference")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--quick", action="store_true", help="a small generator data set (smoke run)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--task", choices=("user", "session", "playlist"), default="user")
    ap.add_argument("--mpd", type=Path, default=None, help="playlist task: MPD slices folder")
    ap.add_argument("--kaggle", type=Path, default=None, help="playlist task: Kaggle CSV")
    ap.add_argument(
        "--seeds",
        default=None,
        help="generator seeds, comma-separated (session, playlist: 42,43,44)",
    )
    ap.add_argument(
        "--snapshot-cache",
        type=Path,
        default=None,
        help="session, playlist: keep exported snapshots here and reuse them (same shape, size, seed)",
    )
    ap.add_argument(
        "--max-positions",
        type=int,
        default=None,
        help="session: evaluate a seeded sample of at most this many positions per split",
    )
    args = ap.parse_args()
    if args.task == "playlist":
        run_playlist_task(args)
        return
    args.out = args.out or HERE / "results" / (
        "quality.json" if args.task == "user" else f"quality_{args.task}.json"
    )
    settings = get_settings()
    driver = _connect(settings)
    models = ap_list(args.models)
    out = {
        "benchmark": "quality",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        "protocol": "per-user temporal split 70/10/20; full ranking over unplayed songs; relevant = "
        "songs first played in the test period",
        "reference_claims": {"recall@10_claimed": 0.38, "recall@10_measured_its_protocol": 0.035},
        "datasets": {},
    }
    if args.task == "session":
        mod = _sibling("_quality_session")
        kwargs = {}
        if args.datasets != "generator,reference":
            kwargs["shapes"] = tuple(ap_list(args.datasets))
        if args.models != ",".join(MODELS):
            kwargs["models"] = tuple(ap_list(args.models))
        if args.seeds:
            kwargs["seeds"] = tuple(int(x) for x in ap_list(args.seeds))
        with tempfile.TemporaryDirectory() as tmp:
            res = mod.run(
                driver, settings, Path(tmp), quick=args.quick, cache=args.snapshot_cache,
                max_positions=args.max_positions, **kwargs,
            )  # fmt: skip
        out.pop("reference_claims")
        out.update(res)
    with tempfile.TemporaryDirectory() as tmp:
        names = ap_list(args.datasets)
        for name in names if args.task == "user" else []:
            print(f"== {name}", flush=True)
            out["datasets"][name] = run_dataset(
                name, driver, settings, models, Path(tmp), args.quick
            )
            print_table(name, out["datasets"][name])
    out["peak_rss_mib"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    driver.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float))
    print(f"\nsaved {args.out}")


def run_playlist_task(args: argparse.Namespace) -> None:
    mod = _sibling("_quality_playlist")
    settings = get_settings()
    driver = _connect(settings)
    given = ap_list(args.datasets) if args.datasets != "generator,reference" else None
    models = ap_list(args.models) if args.models != ",".join(MODELS) else None
    with tempfile.TemporaryDirectory() as tmp:
        seeds = {"seeds": tuple(int(x) for x in ap_list(args.seeds))} if args.seeds else {}
        out = mod.run(
            driver, settings, Path(tmp), datasets=given, models=models, quick=args.quick,
            mpd=args.mpd, kaggle=args.kaggle, cache=args.snapshot_cache, **seeds,
        )  # fmt: skip
    driver.close()
    out["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out["machine"] = {"cpus": psutil.cpu_count(), "python": platform.python_version()}
    out["peak_rss_mib"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    path = args.out or HERE / "results" / "quality_playlist.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float))
    print(f"\nsaved {path}")


def ap_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _connect(settings):
    """The benchmark instance, installed and started when it is the local server."""
    if settings.uses_local_server:
        server = LocalServer(settings)
        server.install()
        server.start()
    driver = connect(settings)
    verify(driver)
    return driver


def _sibling(name: str):
    """A module of this folder by file name (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


if __name__ == "__main__":
    main()
