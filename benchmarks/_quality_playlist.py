"""Playlist continuation quality: every continuation model through one harness, per K bucket.

The RecSys Challenge 2018 setting (see ``gnn.playlists._evaluate``): 10% of the playlists are held
out for validation and 10% for test; each held-out playlist is continued from its first K
tracks and its name, K in {0, 1, 5, 10, 25}; R-precision (with the artist partial credit),
NDCG and clicks over a 500-track list, Recall@10/100/500.

Data sets, each loaded into Neo4j and exported from it (the product's path):

``generator``
    The synthetic generator with ``playlists_per_user`` raised to 3 (its default, 0.5, gives
    too few playlists): about 6,000 playlists over 20,000 songs (``--quick``: 1,500 over
    4,000). Playlists are themed on one or two of their owner's genres and named from
    templates, so names carry the theme.
``mpd`` / ``kaggle``
    Real files when given (``--mpd FOLDER``, ``--kaggle FILE``); skipped otherwise.

The best main-track result of the challenge on the real Million Playlist Dataset was
R-precision 0.224, NDCG 0.395: quoted as context, not as a like-for-like comparison (other
data, a catalogue of 2.2M tracks, one bucket per playlist).

Used by ``benchmarks/quality.py --task playlist``; :func:`run` returns the result dict.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gnn.graph import export_snapshot
from gnn.playlists import PLAYLIST_MODELS, train_playlist_models
from graphdb import apply_schema, wipe_graph
from ingest import SyntheticConfig, ingest

CHALLENGE_BEST = {"r_precision": 0.2241, "ndcg": 0.3946, "clicks": 1.784}
BUCKET_KEYS = ("0", "1", "5", "10", "25")


def _load(driver, settings, source: str, path: Path | None, folder: Path, synthetic=None) -> float:
    wipe_graph(driver, settings.neo4j_database)
    apply_schema(driver, settings.neo4j_database)
    t0 = time.perf_counter()
    ingest(source, path, driver=driver, settings=settings, out_dir=folder, synthetic=synthetic)
    return time.perf_counter() - t0


def run_dataset(
    name: str,
    driver,
    settings,
    tmp: Path,
    *,
    models: list[str],
    quick: bool,
    path: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    folder = tmp / f"playlist-{name}"
    if name == "generator":
        cfg = (
            SyntheticConfig(
                users=500, songs=4000, artists=400, mean_plays_per_user=50,
                playlists_per_user=3.0, seed=42,
            )
            if quick
            else SyntheticConfig(
                users=2000, songs=20000, artists=2000, mean_plays_per_user=50,
                playlists_per_user=3.0, seed=42,
            )
        )  # fmt: skip
        load_s = _load(driver, settings, "synthetic", None, folder, synthetic=cfg)
    else:
        if path is None or not path.exists():
            return {"skipped": f"no {name} data given"}
        load_s = _load(driver, settings, name, path, folder)
    t0 = time.perf_counter()
    snap = export_snapshot(driver, settings.neo4j_database)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    results, split = train_playlist_models(
        snap,
        models,
        activate=None,
        seed=seed,
        progress=lambda m: print(f"  [{name}] {m}", flush=True),
    )
    rows = {
        m: {
            "val": r.val,
            "test": r.test,
            "train_seconds": round(r.seconds, 1),
            "parameters": r.model.num_parameters(),
            "fit": {k: v for k, v in r.fit_info.items() if k != "curve"},
        }
        for m, r in results.items()
    }
    best_val = max(rows, key=lambda m: rows[m]["val"]["overall"]["r_precision"])
    return {
        "playlists": snap.num_playlists,
        "playlist_tracks": int(snap.playlist_song.shape[1]),
        "songs": snap.num_songs,
        "train_playlists": len(split.train),
        "val_playlists": len(split.val),
        "test_playlists": len(split.test),
        "test_cases": next(iter(rows.values()))["test"]["overall"]["n_cases"],
        "load_seconds": round(load_s, 1),
        "export_seconds": round(export_s, 2),
        "fit_and_evaluate_seconds": round(time.perf_counter() - t0, 1),
        "best_by_validation": best_val,
        "models": rows,
    }


def run(
    driver,
    settings,
    tmp: Path,
    *,
    datasets: list[str] | None = None,
    models: list[str] | None = None,
    quick: bool = False,
    mpd: Path | None = None,
    kaggle: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Load each data set into the (wiped) graph, export it, fit and score every model."""
    models = models or list(PLAYLIST_MODELS)
    out: dict[str, Any] = {
        "benchmark": "quality-playlist",
        "protocol": "10% val / 10% test playlists held out whole; first K tracks + name "
        "revealed, K in {0,1,5,10,25} (every bucket a playlist is long enough for); 500 "
        "tracks ranked; RecSys 2018 R-precision (artist credit 0.25), NDCG, clicks; Recall@n",
        "challenge_best_main_track_real_mpd": CHALLENGE_BEST,
        "datasets": {},
    }
    paths = {"mpd": mpd, "kaggle": kaggle}
    for name in datasets or ["generator", "mpd", "kaggle"]:
        print(f"== playlist / {name}", flush=True)
        res = run_dataset(
            name, driver, settings, tmp, models=models, quick=quick, path=paths.get(name), seed=seed
        )
        out["datasets"][name] = res
        print_tables(name, res)
    return out


def print_tables(name: str, res: dict[str, Any]) -> None:
    if "skipped" in res:
        print(f"{name}: skipped ({res['skipped']})")
        return
    print(
        f"\n{name}: {res['playlists']:,} playlists ({res['playlist_tracks']:,} tracks, "
        f"{res['songs']:,} songs); {res['test_playlists']:,} test playlists, "
        f"{res['test_cases']:,} test cases"
    )
    head = ("val R-prec", "R-prec", "NDCG", "clicks", "recall@500", "train s")
    print(f"{'model':<12}" + "".join(f"{c:>12}" for c in head))
    for m, r in res["models"].items():
        t = r["test"]["overall"]
        cells = (
            r["val"]["overall"]["r_precision"],
            t["r_precision"],
            t["ndcg"],
            t["clicks"],
            t["recall@500"],
        )
        print(f"{m:<12}" + "".join(f"{v:>12.4f}" for v in cells) + f"{r['train_seconds']:>12.1f}")
    for metric in ("r_precision", "ndcg"):
        print(f"\n{metric} by seed tracks K (test)")
        print(f"{'model':<12}" + "".join(f"{'K=' + k:>9}" for k in BUCKET_KEYS))
        for m, r in res["models"].items():
            by = r["test"]["buckets"]
            print(
                f"{m:<12}"
                + "".join(f"{by[k][metric]:>9.4f}" if k in by else f"{'-':>9}" for k in BUCKET_KEYS)
            )
    print(f"best by validation R-precision: {res['best_by_validation']}")
