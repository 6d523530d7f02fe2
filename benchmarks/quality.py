"""Recommendation quality: every model through one harness, against the planted-truth oracle.

User task (the default): three data shapes, each at several generator seeds (``--seeds``,
default 42,43,44), all loaded into Neo4j and exported from it (the product's real path):

1. ``generator``: our synthetic generator at 2,000 users / 20,000 songs (about 600,000 plays,
   with genres and planted taste, so the oracle is known); ``--quick``: 500 / 4,000.
2. ``lastfm``: the same generator's plays written as a Last.fm-1K TSV (MBIDs and names only,
   ``_quality_session.write_lastfm_tsv``) and loaded through ``spotify-engine ingest lastfm``:
   no genres, no albums. The oracle is the generator's, mapped through the MBIDs.
3. ``small``: 300 users / 3,000 songs, where deep models usually overfit.

``reference`` (the reference project's own data, ``../shared/data/reference-synthetic``,
1,000 users / 5,000 songs, through the sessions-CSV reader) runs once, seed-independent.

Per (shape, seed): every explainable model (EnhancedGAT, EASE^R, RP3beta, ItemKNN, their
``easerp3`` blend, EASE^R + w RP3beta with w picked on validation, and ``hybrid``, the
exactly explainable taste hybrid of ``gnn.users.TasteHybrid``) is fitted with
``gnn.users.train_and_select`` under the same time budget (``--budget``), so the served model
is the one ``spotify-engine train`` would serve (best validation NDCG@10); the other baselines
(Popularity, ...) and the oracle go through the same harness. Reported: test Recall@10,
NDCG@10, validation NDCG@10, coverage, training wall time; the served model, its NDCG@10 over
EASE^R's and its share of the oracle's.
Per shape: mean and sd over seeds. Prints tables and saves ``benchmarks/results/quality.json``.

It runs against its own local Neo4j instance (``~/.spotify-engine/neo4j-bench``, ports
27687/27474) and wipes it; set NEO4J_URI to use another server (it will be wiped too).

    python benchmarks/quality.py [--datasets generator,lastfm,small] [--seeds 42,43,44]
        [--models ...] [--quick] [--repeat] [--snapshot-cache DIR]
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

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from gnn.graph import export_snapshot  # noqa: E402
from gnn.users import (  # noqa: E402
    Oracle,
    compare_models,
    oracle_from_truth,
    prepare,
    train_and_select,
    train_model,
)
from graphdb import LocalServer, apply_schema, connect, verify, wipe_graph  # noqa: E402
from ingest import SyntheticConfig, ingest  # noqa: E402
from spotify_engine.settings import get_settings  # noqa: E402

REFERENCE = HERE.parent.parent / "shared" / "data" / "reference-synthetic"
MODELS = ("popularity", "itemknn", "ease", "rp3beta", "lightgcn", "basicgat", "enhancedgat")
BASELINES = ("popularity", "itemknn", "ease", "rp3beta", "lightgcn")
#: User task, per shape and seed: the served candidates (explainable, chosen on validation)
#: and the other models compared on the same split.
USER_MODELS = ("enhancedgat", "ease", "rp3beta", "itemknn", "easerp3", "hybrid", "popularity")
SERVABLE = ("enhancedgat", "ease", "rp3beta", "itemknn", "easerp3", "hybrid")
USER_SHAPES = ("generator", "lastfm", "small")
SEEDS = (42, 43, 44)
SUMMARY = ("ndcg@10", "recall@10", "val_ndcg@10", "train_seconds")


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


def user_config(shape: str, quick: bool, seed: int) -> SyntheticConfig:
    """The generator's settings for one user-task shape and seed."""
    if shape == "small":
        return SyntheticConfig(
            users=300, songs=3000, artists=300, mean_plays_per_user=200, seed=seed
        )
    if quick:
        return SyntheticConfig(
            users=500, songs=4000, artists=400, mean_plays_per_user=200, seed=seed
        )
    return SyntheticConfig(
        users=2000, songs=20000, artists=2000, mean_plays_per_user=300, seed=seed
    )


def lastfm_oracle(snap, generated: Path, session_mod) -> Oracle | None:
    """The generator's oracle for a graph loaded from its Last.fm-shaped TSV: users and songs
    are mapped back through the TSV's user names and MBIDs (see ``write_lastfm_tsv``; the
    reader keys songs ``mbid:<id>``)."""
    import pandas as pd

    from ingest import load_truth, oracle_scores

    plays = pd.read_parquet(generated / "plays.parquet", columns=["user_id", "song_id"])
    users = {f"user_{i + 1:06d}": u for i, u in enumerate(sorted(plays["user_id"].unique()))}
    songs = {session_mod._mbid("song", x): x for x in plays["song_id"].unique()}
    uids = [users.get(str(u)) for u in snap.user_ids]
    sids = [songs.get(str(x).removeprefix("mbid:")) for x in snap.song_ids]  # reader: mbid:<id>
    if None in uids or None in sids:
        print("  [lastfm] ids do not map back to the generator's: no oracle", flush=True)
        return None
    prefs = oracle_scores(
        load_truth(generated / "truth.json"),
        uids,
        sids,
        songs=pd.read_parquet(generated / "songs.parquet"),
        song_genres=pd.read_parquet(generated / "song_genres.parquet"),
    )
    return Oracle(prefs.astype(np.float32))


def run_user_seed(
    shape: str,
    seed: int,
    driver,
    settings,
    models: list[str],
    tmp: Path,
    quick: bool,
    repeat: bool = False,
    cache: Path | None = None,
    budget: float | None = None,
) -> dict:
    """One shape at one seed: load through Neo4j, export, select the served model on
    validation, compare the rest and the oracle on the same split; with ``repeat``, fit the
    served model once more with the same seed and record the NDCG@10 difference.

    With ``cache``, the loaded data folder and the exported snapshot are kept there
    (``<source>-<size>-<seed>/`` and ``.npz``) and reused by later runs of the same shape, size
    and seed (they were loaded through Neo4j and exported from it the first time)."""
    from gnn.graph import load_snapshot, save_snapshot

    session_mod = _sibling("_quality_session")
    source = "lastfm" if shape == "lastfm" else "generator"
    size = "small" if shape == "small" else "quick" if quick else "full"
    name = f"{source}-{size}-{seed}"
    folder = (cache or tmp) / name
    cfg = user_config(shape, quick, seed)
    cached = cache is not None and (cache / f"{name}.npz").is_file() and folder.is_dir()
    load_s = export_s = 0.0
    if cached:
        assert cache is not None
        snap = load_snapshot(cache / f"{name}.npz")
    else:
        t0 = time.perf_counter()
        session_mod.load_shape(source, cfg, driver, settings, folder)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        snap = export_snapshot(driver, settings.neo4j_database)
        export_s = time.perf_counter() - t0
        if cache is not None:
            save_snapshot(snap, cache / f"{name}.npz")
    exp = prepare(snap)
    if shape == "lastfm":
        oracle = lastfm_oracle(snap, folder / "generated", session_mod)
    else:
        oracle = oracle_from_truth(snap, folder)
    label = f"  [{shape}/{seed}]"
    servable = [m for m in models if m in SERVABLE]
    rows: dict[str, dict] = {}
    selected = None
    t0 = time.perf_counter()
    if servable:
        sel = train_and_select(
            exp,
            servable,
            runs_root=tmp / "runs",
            progress=lambda m: print(f"{label} {m} ...", flush=True),
            budget_s=budget,
        )
        selected = sel.selection["best"]
        for m, r in sel.table().iterrows():
            rows[str(m)] = {k: float(v) for k, v in r.items() if isinstance(v, int | float)}
    others = [m for m in models if m not in SERVABLE]
    if others or oracle is not None:
        df = compare_models(
            exp, others, oracle=oracle, progress=lambda m: print(f"{label} {m} ...", flush=True)
        )
        for m, r in df.iterrows():
            rows[str(m)] = {k: float(v) for k, v in r.items() if isinstance(v, int | float)}
    per = {
        "users": snap.num_users,
        "songs": snap.num_songs,
        "plays": snap.num_plays,
        "genres": int(getattr(snap, "num_genres", 0) or 0),
        "evaluated_users": int(next(iter(rows.values()))["n_users"]),
        "load_seconds": round(load_s, 1),
        "export_seconds": round(export_s, 2),
        "snapshot_cached": cached,
        "compare_seconds": round(time.perf_counter() - t0, 1),
        "models": rows,
        "selected": selected,
    }
    if selected is not None and repeat:
        again = train_model(exp, selected, runs_root=tmp / "runs", activate=False)
        per["repeat_ndcg10_abs_diff"] = abs(again.metrics["ndcg@10"] - rows[selected]["ndcg@10"])
        per["repeat_train_seconds"] = again.seconds
    if selected is not None:
        served = rows[selected]["ndcg@10"]
        if "ease" in rows:
            per["served_ndcg10_over_ease"] = served / rows["ease"]["ndcg@10"]
        if "oracle" in rows:
            per["served_ndcg10_of_oracle"] = served / rows["oracle"]["ndcg@10"]
    return per


def _mean_sd(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
        "n": int(len(a)),
    }


def summarise_user(per_seed: dict[str, dict]) -> dict:
    """Mean and spread over seeds per model and metric; the served model's ratios."""
    runs = list(per_seed.values())
    names = [m for m in runs[0]["models"] if all(m in r["models"] for r in runs)]
    out: dict = {
        "models": {
            m: {
                k: _mean_sd([r["models"][m][k] for r in runs])
                for k in SUMMARY
                if all(k in r["models"][m] for r in runs)
            }
            for m in names
        },
        "selected_per_seed": [r["selected"] for r in runs],
    }
    served = [r["models"][r["selected"]]["ndcg@10"] for r in runs if r["selected"]]
    if served:
        out["served_ndcg@10"] = _mean_sd(served)
    for key in ("served_ndcg10_over_ease", "served_ndcg10_of_oracle", "repeat_ndcg10_abs_diff"):
        vals = [r[key] for r in runs if key in r]
        if vals:
            out[key] = _mean_sd(vals)
    return out


def print_user_seed(shape: str, seed: int, res: dict) -> None:
    print(
        f"\n{shape} / seed {seed}: {res['users']:,} users, {res['songs']:,} songs, "
        f"{res['plays']:,} plays; {res['evaluated_users']:,} users evaluated"
    )
    cols = ("recall@10", "ndcg@10", "val_ndcg@10", "coverage@10", "train_seconds")
    print(f"{'model':<14}" + "".join(f"{c:>14}" for c in cols))
    for m, r in res["models"].items():
        mark = " *" if m == res["selected"] else ""
        cells = "".join(
            f"{r[c]:>14.1f}" if c == "train_seconds" and c in r
            else f"{r[c]:>14.4f}" if c in r else f"{'-':>14}"
            for c in cols
        )  # fmt: skip
        print(f"{m + mark:<14}{cells}")
    for key in ("served_ndcg10_over_ease", "served_ndcg10_of_oracle", "repeat_ndcg10_abs_diff"):
        if key in res:
            print(f"{key}: {res[key]:.3f}")


def print_user_summary(shape: str, summ: dict) -> None:
    print(f"\n== {shape}: mean +- sd over seeds (served per seed: {summ['selected_per_seed']})")
    print(f"{'model':<14}" + "".join(f"{c:>22}" for c in SUMMARY))
    for m, stats in summ["models"].items():
        cells = "".join(
            f"{stats[c]['mean']:>13.4f} +- {stats[c]['sd']:<5.4f}" if c in stats else f"{'-':>22}"
            for c in SUMMARY
        )
        print(f"{m:<14}{cells}")
    for key in (
        "served_ndcg@10",
        "served_ndcg10_over_ease",
        "served_ndcg10_of_oracle",
        "repeat_ndcg10_abs_diff",
    ):
        if key in summ:
            v = summ[key]
            print(
                f"{key}: {v['mean']:.4f} +- {v['sd']:.4f} (min {v['min']:.4f}, max {v['max']:.4f})"
            )


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
    ap.add_argument(
        "--datasets",
        default=None,
        help="user: generator,lastfm,small (default) and/or reference; session, playlist: "
        "their shapes",
    )
    ap.add_argument("--models", default=None, help=f"user default: {','.join(USER_MODELS)}")
    ap.add_argument("--quick", action="store_true", help="a small generator data set (smoke run)")
    ap.add_argument(
        "--repeat",
        action="store_true",
        help="user: fit each served model twice with the same seed (NDCG@10 difference)",
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--task", choices=("user", "session", "playlist"), default="user")
    ap.add_argument("--mpd", type=Path, default=None, help="playlist task: MPD slices folder")
    ap.add_argument("--kaggle", type=Path, default=None, help="playlist task: Kaggle CSV")
    ap.add_argument(
        "--seeds",
        default=None,
        help="generator seeds, comma-separated (default 42,43,44)",
    )
    ap.add_argument(
        "--snapshot-cache",
        type=Path,
        default=None,
        help="keep exported snapshots (user task: and the loaded data) here and reuse them "
        "(same shape, size, seed)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="user task: the selection's time budget in seconds, as spotify-engine train "
        "(default: the train_budget_s setting, 300; 0: none)",
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
    models = ap_list(args.models or ",".join(USER_MODELS if args.task == "user" else MODELS))
    seeds = tuple(int(x) for x in ap_list(args.seeds)) if args.seeds else SEEDS
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
        if args.datasets is not None:
            kwargs["shapes"] = tuple(ap_list(args.datasets))
        if args.models is not None:
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
    if args.task == "user":
        out["protocol"] += (
            "; served model: best validation NDCG@10 among the explainable models "
            "(gnn.users.train_and_select)"
        )
        out["seeds"] = list(seeds)
        out["quick"] = args.quick
        budget = out["budget_s"] = settings.train_budget(args.budget)
        with tempfile.TemporaryDirectory() as tmp:
            for name in ap_list(args.datasets or ",".join(USER_SHAPES)):
                if name == "reference":
                    print(f"== {name}", flush=True)
                    res = run_dataset(name, driver, settings, models, Path(tmp), args.quick)
                    out["datasets"][name] = res
                    print_table(name, res)
                    continue
                if name not in USER_SHAPES:
                    raise SystemExit(
                        f"error: unknown data set {name!r}; choose from "
                        f"{', '.join((*USER_SHAPES, 'reference'))}"
                    )
                per_seed = {}
                for seed in seeds:
                    print(f"== user / {name} / seed {seed}", flush=True)
                    res = run_user_seed(
                        name, seed, driver, settings, models, Path(tmp), args.quick, args.repeat,
                        cache=args.snapshot_cache, budget=budget,
                    )  # fmt: skip
                    per_seed[str(seed)] = res
                    print_user_seed(name, seed, res)
                    out["datasets"][name] = {"per_seed": per_seed}  # the seeds done so far
                    _save(args.out, out | {"partial": True})
                out["datasets"][name] = {"per_seed": per_seed, "summary": summarise_user(per_seed)}
                print_user_summary(name, out["datasets"][name]["summary"])
    out["peak_rss_mib"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    driver.close()
    _save(args.out, out)
    print(f"\nsaved {args.out}")


def _save(path: Path, out: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float))


def run_playlist_task(args: argparse.Namespace) -> None:
    mod = _sibling("_quality_playlist")
    settings = get_settings()
    driver = _connect(settings)
    given = ap_list(args.datasets) if args.datasets is not None else None
    models = ap_list(args.models) if args.models is not None else None
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
