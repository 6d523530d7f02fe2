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
    templates, so names carry the theme. The graph also has users, plays and genres.
``mpd-shaped``
    The same generator's playlists written as Million Playlist Dataset slices
    (``mpd.slice.0-999.json``...: name, pid, tracks with Spotify-style track, artist and
    album URIs and names) and read by ``spotify-engine ingest mpd``: **no users, no plays, no
    genres**, as in the real MPD.
``mpd`` / ``kaggle``
    Real files when given (``--mpd FOLDER``, ``--kaggle FILE``); skipped otherwise.

The generator shapes run at every generator seed asked for (``--seeds``, default 42,43,44);
per model: R-precision, NDCG (challenge), NDCG@10 per seed, then mean and standard deviation.
The served model is the best by validation R-precision (``best_by_validation``); EASE^R is the
bar (``served_over_ease``: the served model's test figure over EASE^R's, per seed).

The best main-track result of the challenge on the real Million Playlist Dataset was
R-precision 0.224, NDCG 0.395: quoted as context, not as a like-for-like comparison (other
data, a catalogue of 2.2M tracks, one bucket per playlist).

Used by ``benchmarks/quality.py --task playlist``; :func:`run` returns the result dict.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gnn.graph import export_snapshot, load_snapshot, save_snapshot
from gnn.playlists import PLAYLIST_MODELS, train_playlist_models
from graphdb import apply_schema, wipe_graph
from ingest import SyntheticConfig, generate, ingest

CHALLENGE_BEST = {"r_precision": 0.2241, "ndcg": 0.3946, "clicks": 1.784}
BUCKET_KEYS = ("0", "1", "5", "10", "25")
GENERATED = ("generator", "mpd-shaped")
SEEDS = (42, 43, 44)
SUMMARY = ("r_precision", "ndcg", "ndcg@10")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def generator_config(quick: bool, seed: int) -> SyntheticConfig:
    if quick:
        return SyntheticConfig(
            users=500, songs=4000, artists=400, mean_plays_per_user=50,
            playlists_per_user=3.0, seed=seed,
        )  # fmt: skip
    return SyntheticConfig(
        users=2000, songs=20000, artists=2000, mean_plays_per_user=50,
        playlists_per_user=3.0, seed=seed,
    )  # fmt: skip


def _uri(kind: str, key: str) -> str:
    """``spotify:<kind>:`` and 22 base-62 characters derived from ``key``."""
    n = int.from_bytes(hashlib.sha256(f"{kind}:{key}".encode()).digest(), "big")
    chars = []
    for _ in range(22):
        n, r = divmod(n, 62)
        chars.append(_B62[r])
    return f"spotify:{kind}:{''.join(chars)}"


def write_mpd_slices(tables: Path, folder: Path, per_slice: int = 1000) -> int:
    """Write the generator's playlists (``tables``: its Parquet folder) as MPD slices.

    Each playlist keeps its name, track order and follower count; tracks carry track, artist
    and album URIs and names and the duration, as in the real files. Owners, plays and genres
    are left out. Returns the number of playlists written.
    """
    import pandas as pd

    pls = pd.read_parquet(tables / "playlists.parquet")
    tracks = pd.read_parquet(tables / "playlist_tracks.parquet")
    songs = pd.read_parquet(
        tables / "songs.parquet",
        columns=["song_id", "name", "artist_id", "album_id", "duration_ms"],
    )
    artists = pd.read_parquet(tables / "artists.parquet", columns=["artist_id", "name"])
    albums = pd.read_parquet(tables / "albums.parquet", columns=["album_id", "name"])
    songs = songs.merge(artists.rename(columns={"name": "artist_name"}), on="artist_id")
    songs = songs.merge(albums.rename(columns={"name": "album_name"}), on="album_id", how="left")
    tracks = tracks.merge(songs, on="song_id").sort_values(["playlist_id", "pos"], kind="stable")
    by_pl = {k: g for k, g in tracks.groupby("playlist_id", sort=False)}
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for pid, row in enumerate(pls.itertuples(index=False)):
        g = by_pl.get(row.playlist_id)
        items = [] if g is None else list(g.itertuples(index=False))
        out.append(
            {
                "name": row.name,
                "collaborative": "false",
                "pid": pid,
                "modified_at": int(row.modified_at) // 1000,
                "num_tracks": len(items),
                "num_albums": len({t.album_id for t in items}),
                "num_followers": int(row.num_followers),
                "tracks": [
                    {
                        "pos": k,
                        "artist_name": t.artist_name,
                        "track_uri": _uri("track", t.song_id),
                        "artist_uri": _uri("artist", t.artist_id),
                        "track_name": t.name,
                        "album_uri": _uri("album", t.album_id),
                        "duration_ms": int(t.duration_ms),
                        "album_name": t.album_name,
                    }
                    for k, t in enumerate(items)
                ],
            }
        )
    for lo in range(0, len(out), per_slice):
        hi = min(lo + per_slice, len(out)) - 1
        doc = {
            "info": {"generated_on": "synthetic", "slice": f"{lo}-{hi}", "version": "v1"},
            "playlists": out[lo : hi + 1],
        }
        (folder / f"mpd.slice.{lo}-{hi}.json").write_text(json.dumps(doc), encoding="utf-8")
    return len(out)


def _load(driver, settings, source: str, path: Path | None, folder: Path, synthetic=None) -> float:
    wipe_graph(driver, settings.neo4j_database)
    apply_schema(driver, settings.neo4j_database)
    t0 = time.perf_counter()
    ingest(source, path, driver=driver, settings=settings, out_dir=folder, synthetic=synthetic)
    return time.perf_counter() - t0


def _snapshot(
    name: str,
    driver,
    settings,
    folder: Path,
    *,
    quick: bool,
    gen_seed: int,
    path: Path | None,
    cache: Path | None,
) -> tuple[Any, dict[str, Any]] | None:
    """The exported snapshot of a data set (None when a real file is missing)."""
    key = f"playlist-{name}-{'quick' if quick else 'full'}-{gen_seed}.npz"
    if name in GENERATED and cache is not None and (cache / key).is_file():
        return load_snapshot(cache / key), {"cached": True}
    if name == "generator":
        cfg = generator_config(quick, gen_seed)
        load_s = _load(driver, settings, "synthetic", None, folder, synthetic=cfg)
    elif name == "mpd-shaped":
        generate(generator_config(quick, gen_seed), folder / "generated")
        write_mpd_slices(folder / "generated", folder / "mpd")
        load_s = _load(driver, settings, "mpd", folder / "mpd", folder / "ingest")
    else:
        if path is None or not path.exists():
            return None
        load_s = _load(driver, settings, name, path, folder)
    t0 = time.perf_counter()
    snap = export_snapshot(driver, settings.neo4j_database)
    timing = {
        "load_seconds": round(load_s, 1),
        "export_seconds": round(time.perf_counter() - t0, 2),
    }
    if name in GENERATED and cache is not None:
        save_snapshot(snap, cache / key)
    return snap, timing


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
    gen_seed: int = 42,
    cache: Path | None = None,
) -> dict[str, Any]:
    folder = tmp / f"playlist-{name}-{gen_seed}"
    got = _snapshot(
        name, driver, settings, folder, quick=quick, gen_seed=gen_seed, path=path, cache=cache
    )
    if got is None:
        return {"skipped": f"no {name} data given"}
    snap, timing = got
    from types import SimpleNamespace

    from gnn.playlists import PlaylistCorpus, playlist_selection, split_playlists

    split = split_playlists(PlaylistCorpus.from_snapshot(snap), seed=seed)
    ckpt = (
        None
        if cache is None or name not in GENERATED
        else cache / f"partial-playlist-{name}-{'quick' if quick else 'full'}-{gen_seed}-{seed}"
    )
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows: dict[str, Any] = {}
    fitted: dict[str, Any] = {}
    for m in models:  # one model at a time, each checkpointed (its state too, for the hybrid)
        row_file = None if ckpt is None else ckpt / f"{m}.json"
        if row_file is not None and row_file.is_file():
            rows[m] = json.loads(row_file.read_text(encoding="utf-8"))
            if (ckpt / f"{m}.npz").is_file():
                fitted[m] = _load_state(m, ckpt)
            continue
        results, _ = train_playlist_models(
            snap,
            [m],
            activate=None,
            seed=seed,
            reuse=fitted,
            progress=lambda text: print(f"  [{name}] {text}", flush=True),
        )
        r = results[m]
        reused = [x for x in r.fit_info.get("reused", []) if x in rows]
        rows[m] = {
            "val": r.val,
            "test": r.test,
            "train_seconds": round(r.seconds + sum(rows[x]["train_seconds"] for x in reused), 1),
            "parameters": r.model.num_parameters(),
            "fit": {k: v for k, v in r.fit_info.items() if k != "curve"},
        }
        fitted[m] = r.model
        if ckpt is not None:
            if m in ("ease", "playlistgnn"):
                _save_state(r.model, ckpt)
            row_file.write_text(json.dumps(rows[m], default=float), encoding="utf-8")
    sel = playlist_selection(
        {m: SimpleNamespace(val=r["val"], test=r["test"]) for m, r in rows.items()}  # type: ignore[misc]
    )
    return {
        "playlists": snap.num_playlists,
        "playlist_tracks": int(snap.playlist_song.shape[1]),
        "songs": snap.num_songs,
        "users": snap.num_users,
        "genres": snap.num_genres,
        "train_playlists": len(split.train),
        "val_playlists": len(split.val),
        "test_playlists": len(split.test),
        "test_cases": next(iter(rows.values()))["test"]["overall"]["n_cases"],
        **timing,
        "fit_and_evaluate_seconds": round(time.perf_counter() - t0, 1),
        "best_by_validation": sel["best"],
        "selection": sel,
        "models": rows,
    }


def _save_state(model: Any, folder: Path) -> None:
    arrays, meta = model.state()
    with open(folder / f"{model.name}.npz", "wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    (folder / f"{model.name}.meta.json").write_text(json.dumps(meta), encoding="utf-8")


def _load_state(name: str, folder: Path) -> Any:
    meta = json.loads((folder / f"{name}.meta.json").read_text(encoding="utf-8"))
    with np.load(folder / f"{name}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return PLAYLIST_MODELS[name].from_state(arrays, meta)


def _mean_sd(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
    }


def summarise(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over seeds of the test figures; the served model over EASE^R."""
    runs = [r for r in per_seed.values() if "models" in r]
    if not runs:
        return {}
    names = [m for m in runs[0]["models"] if all(m in r["models"] for r in runs)]
    out: dict[str, Any] = {
        "models": {
            m: {k: _mean_sd([r["models"][m]["test"]["overall"][k] for r in runs]) for k in SUMMARY}
            for m in names
        },
        "selected_per_seed": [r["best_by_validation"] for r in runs],
    }
    if "ease" in names:
        for k in SUMMARY:
            out[f"served_{k}_over_ease"] = _mean_sd(
                [
                    r["models"][r["best_by_validation"]]["test"]["overall"][k]
                    / r["models"]["ease"]["test"]["overall"][k]
                    for r in runs
                ]
            )
            for m in names:
                if m in ("ease", "popularity", "namepop", "itemknn", "hybridknn"):
                    continue
                out[f"{m}_{k}_over_ease"] = _mean_sd(
                    [
                        r["models"][m]["test"]["overall"][k]
                        / r["models"]["ease"]["test"]["overall"][k]
                        for r in runs
                    ]
                )
    return out


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
    seeds: tuple[int, ...] = SEEDS,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Load each data set into the (wiped) graph, export it, fit and score every model; the
    generator shapes once per generator seed, with a summary over seeds. With ``cache``,
    snapshots and each finished (data set, seed) result are kept there and reused."""
    models = models or list(PLAYLIST_MODELS)
    out: dict[str, Any] = {
        "benchmark": "quality-playlist",
        "protocol": "10% val / 10% test playlists held out whole; first K tracks + name "
        "revealed, K in {0,1,5,10,25} (every bucket a playlist is long enough for); 500 "
        "tracks ranked; RecSys 2018 R-precision (artist credit 0.25), NDCG, clicks; NDCG@10; "
        "Recall@n. Served: best validation R-precision.",
        "challenge_best_main_track_real_mpd": CHALLENGE_BEST,
        "seeds": list(seeds),
        "split_seed": seed,
        "quick": quick,
        "datasets": {},
    }
    paths = {"mpd": mpd, "kaggle": kaggle}
    for name in datasets or ["generator", "mpd-shaped", "mpd", "kaggle"]:
        if name not in GENERATED:
            print(f"== playlist / {name}", flush=True)
            res = run_dataset(
                name, driver, settings, tmp, models=models, quick=quick, path=paths.get(name),
                seed=seed, cache=cache,
            )  # fmt: skip
            out["datasets"][name] = res
            print_tables(name, res)
            continue
        per_seed = {}
        for gen_seed in seeds:
            print(f"== playlist / {name} / seed {gen_seed}", flush=True)
            key = json.dumps([name, gen_seed, quick, list(models), seed])
            tag = hashlib.sha1(key.encode()).hexdigest()[:12]
            done = None if cache is None else cache / f"result-playlist-{tag}.json"
            if done is not None and done.is_file():
                res = json.loads(done.read_text(encoding="utf-8"))  # a run finished earlier
            else:
                res = run_dataset(
                    name, driver, settings, tmp, models=models, quick=quick, seed=seed,
                    gen_seed=gen_seed, cache=cache,
                )  # fmt: skip
                if done is not None:
                    done.write_text(json.dumps(res, default=float), encoding="utf-8")
            per_seed[str(gen_seed)] = res
            print_tables(f"{name} / seed {gen_seed}", res)
        out["datasets"][name] = {"per_seed": per_seed, "summary": summarise(per_seed)}
        print_summary(name, out["datasets"][name]["summary"])
    return out


def print_summary(name: str, summ: dict[str, Any]) -> None:
    if not summ:
        return
    print(f"\nplaylist / {name}: test, mean ± sd over seeds")
    print(f"{'model':<14}" + "".join(f"{k:>19}" for k in SUMMARY))
    for m, r in summ["models"].items():
        print(
            f"{m:<14}"
            + "".join(f"{r[k]['mean']:.4f} ± {r[k]['sd']:.4f}".rjust(19) for k in SUMMARY)
        )
    print(f"served per seed: {', '.join(summ['selected_per_seed'])}")
    for k in SUMMARY:
        v = summ.get(f"served_{k}_over_ease")
        if v:
            print(f"served {k} / EASE^R: {v['mean']:.3f} ± {v['sd']:.3f} (min {v['min']:.3f})")


def print_tables(name: str, res: dict[str, Any]) -> None:
    if "skipped" in res:
        print(f"{name}: skipped ({res['skipped']})")
        return
    print(
        f"\n{name}: {res['playlists']:,} playlists ({res['playlist_tracks']:,} tracks, "
        f"{res['songs']:,} songs); {res['test_playlists']:,} test playlists, "
        f"{res['test_cases']:,} test cases"
    )
    head = ("val R-prec", "R-prec", "NDCG", "NDCG@10", "clicks", "recall@500", "train s")
    print(f"{'model':<14}" + "".join(f"{c:>12}" for c in head))
    for m, r in res["models"].items():
        t = r["test"]["overall"]
        cells = (
            r["val"]["overall"]["r_precision"],
            t["r_precision"],
            t["ndcg"],
            t["ndcg@10"],
            t["clicks"],
            t["recall@500"],
        )
        print(f"{m:<14}" + "".join(f"{v:>12.4f}" for v in cells) + f"{r['train_seconds']:>12.1f}")
    for metric in ("r_precision", "ndcg"):
        print(f"\n{metric} by seed tracks K (test)")
        print(f"{'model':<14}" + "".join(f"{'K=' + k:>9}" for k in BUCKET_KEYS))
        for m, r in res["models"].items():
            by = r["test"]["buckets"]
            print(
                f"{m:<14}"
                + "".join(f"{by[k][metric]:>9.4f}" if k in by else f"{'-':>9}" for k in BUCKET_KEYS)
            )
    sel = res["selection"]
    line = f"best by validation R-precision: {sel['best']} {sel['best_val']:.4f}"
    if "runner_up" in sel:
        line += f" ({100 * sel['margin']:+.1f}% over {sel['runner_up']} {sel['runner_up_val']:.4f})"
    print(line)
