"""Next song in a session: the quality table of ``benchmarks/quality.py --task session``.

Data shapes, each loaded into Neo4j and exported from it (the product's real path), at every
generator seed asked for (``--seeds``, default 42,43,44):

``generator``
    The synthetic generator at about 2,000 users / 20,000 songs / 600,000 plays (``--quick``:
    500 / 4,000 / 100,000), with genres, albums and the generator's own sessions.
``lastfm``
    The same generator's plays written as a Last.fm-1K TSV (user, ISO timestamp, artist MBID
    and name, track MBID and name; newest play first per user) and read by
    ``spotify-engine ingest lastfm``: no genres, no albums, no durations, and sessions cut by
    30 minutes of inactivity, as for the real log.

Protocol (``gnn.sessions``): global time cut on session start (last 20% of sessions test, the
10% before validation); every next play of a held-out session predicted from its prefix; full
ranking over the catalogue. Three views of the test figures:

``serving`` (main table)
    Prefix songs are not candidates (the API never returns an input song) and the targets
    that repeat a prefix song are **left out** (their share is ``repeat_share``).
``serving_with_repeats``
    The same lists with every position counted: a repeat target is a miss (the served answer
    can never contain it). Figures are the serving ones times ``1 - repeat_share``.
``all_positions``
    Every song a candidate, every position counted: repeats are valid targets a model may hit.

The served model is the best by validation MRR@20 (serving protocol); test figures never pick
anything. Per model and shape: HR@20 and MRR@20 (and @10) per seed, then mean and standard
deviation over seeds; the served model's MRR@20 over the best baseline's, per seed.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

MODELS = (
    "popularity", "markov", "sknn", "vsknn", "stan", "sessiongnn", "sessionhybrid", "sessionmix",
)  # fmt: skip
BASELINES = ("popularity", "markov", "sknn", "vsknn", "stan")
SHAPES = ("generator", "lastfm")
SEEDS = (42, 43, 44)
COLS = ("hit_rate@10", "mrr@10", "hit_rate@20", "mrr@20", "coverage@20", "val_mrr@20")
SUMMARY = ("hit_rate@20", "mrr@20")
_NS = uuid.UUID("6f1c3a52-8d1e-4c8f-9a57-0c8f2b6e1d18")


def generator_config(quick: bool, seed: int) -> Any:
    from ingest import SyntheticConfig

    if quick:
        return SyntheticConfig(
            users=500, songs=4000, artists=400, mean_plays_per_user=200, seed=seed
        )
    return SyntheticConfig(
        users=2000, songs=20000, artists=2000, mean_plays_per_user=300, seed=seed
    )


def _mbid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


def write_lastfm_tsv(tables: Path, path: Path) -> int:
    """Write the generator's plays (``tables``: its Parquet folder) as a Last.fm-1K TSV.

    Six tab-separated fields, no header: user id, ``YYYY-MM-DDTHH:MM:SSZ``, artist MBID, artist
    name, track MBID, track name; newest play first per user, as in the real file. MBIDs are
    UUIDs derived from the generator's ids, so the same song is the same MBID. Genres, albums,
    durations, skips and the generator's session ids are left out. Returns the rows written.
    """
    import pandas as pd

    plays = pd.read_parquet(tables / "plays.parquet", columns=["user_id", "song_id", "ts"])
    songs = pd.read_parquet(tables / "songs.parquet", columns=["song_id", "name", "artist_id"])
    artists = pd.read_parquet(tables / "artists.parquet", columns=["artist_id", "name"])
    songs = songs.merge(artists.rename(columns={"name": "artist_name"}), on="artist_id")
    df = plays.merge(songs, on="song_id", how="left")
    df = df.sort_values(["user_id", "ts"], ascending=[True, False], kind="stable")
    users = {u: f"user_{i + 1:06d}" for i, u in enumerate(sorted(df["user_id"].unique()))}
    stamp = pd.to_datetime(df["ts"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    artist_mbid = {a: _mbid("artist", a) for a in df["artist_id"].unique()}
    song_mbid = {s: _mbid("song", s) for s in df["song_id"].unique()}

    def clean(col: pd.Series) -> pd.Series:
        return col.astype(str).str.replace(r"[\t\r\n]", " ", regex=True)

    out = pd.DataFrame(
        {
            "user": df["user_id"].map(users),
            "ts": stamp,
            "artid": df["artist_id"].map(artist_mbid),
            "artname": clean(df["artist_name"]),
            "traid": df["song_id"].map(song_mbid),
            "traname": clean(df["name"]),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in out.itertuples(index=False):
            fh.write("\t".join(row) + "\n")
    return len(out)


def load_shape(shape: str, cfg: Any, driver: Any, settings: Any, folder: Path) -> float:
    """Wipe the graph and load one data shape into it; returns the seconds taken."""
    from graphdb import apply_schema, wipe_graph
    from ingest import generate, ingest

    wipe_graph(driver, settings.neo4j_database)
    apply_schema(driver, settings.neo4j_database)
    t0 = time.perf_counter()
    if shape == "generator":
        ingest("synthetic", None, driver=driver, settings=settings, out_dir=folder, synthetic=cfg)
    elif shape == "lastfm":
        generate(cfg, folder / "generated")
        tsv = folder / "userid-timestamp-artid-artname-traid-traname.tsv"
        write_lastfm_tsv(folder / "generated", tsv)
        ingest("lastfm", tsv, driver=driver, settings=settings, out_dir=folder / "ingest")
    else:
        raise ValueError(f"unknown session data shape {shape!r}; choose one of {SHAPES}")
    return time.perf_counter() - t0


def snapshot_for(
    shape: str,
    seed: int,
    *,
    quick: bool,
    driver: Any,
    settings: Any,
    tmp: Path,
    cache: Path | None = None,
) -> tuple[Any, dict[str, float]]:
    """The exported snapshot of one shape and seed, loaded through Neo4j; with ``cache``,
    a snapshot exported earlier for the same shape, size and seed is read from there."""
    from gnn.graph import export_snapshot, load_snapshot, save_snapshot

    name = f"session-{shape}-{'quick' if quick else 'full'}-{seed}.npz"
    if cache is not None and (cache / name).is_file():
        return load_snapshot(cache / name), {"cached": 1.0}
    load_s = load_shape(
        shape, generator_config(quick, seed), driver, settings, tmp / f"{shape}-{seed}"
    )
    t0 = time.perf_counter()
    snap = export_snapshot(driver, settings.neo4j_database)
    timing = {
        "load_seconds": round(load_s, 1),
        "export_seconds": round(time.perf_counter() - t0, 2),
    }
    if cache is not None:
        save_snapshot(snap, cache / name)
    return snap, timing


#: Models fitted together (the hybrid reuses the GNN fitted just before it); every other model
#: is a group of its own. Each group's figures are checkpointed as soon as it is done.
GROUPS = (("sessiongnn", "sessionhybrid"),)


def _groups(models: tuple[str, ...]) -> list[list[str]]:
    out: list[list[str]] = []
    for m in models:
        together = next((g for g in GROUPS if m in g), None)
        if together is not None and out and out[-1][0] in together:
            out[-1].append(m)
        else:
            out.append([m])
    return out


def run_one(
    snap: Any,
    models: tuple[str, ...],
    *,
    threads: int = 1,
    max_positions: int | None = None,
    label: str = "",
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    """Fit every model on one snapshot, evaluate both protocols; one result dict.

    Models are fitted in groups (:data:`GROUPS`); with ``checkpoint`` (a JSON file) each
    group's figures are saved there when done and a group already there is not run again.
    The served model is picked over all groups by validation MRR@20.
    """
    from gnn.sessions import (
        SESSION_BASELINES,
        compare_session_models,
        evaluate_sessions,
        prepare_sessions,
        selection_summary,
    )

    exp = prepare_sessions(snap)
    test = exp.part("test")
    overrides = {m: {"threads": threads} for m in ("sessiongnn", "sessionhybrid")}
    done: dict[str, Any] = {"models": {}, "fit": {}, "all_positions": {}, "seconds": 0.0}
    if checkpoint is not None and checkpoint.is_file():
        done = json.loads(checkpoint.read_text(encoding="utf-8"))
    for group in _groups(models):
        if all(m in done["models"] for m in group):
            continue
        t0 = time.perf_counter()
        res = compare_session_models(
            exp,
            group,
            overrides=overrides,
            max_positions=max_positions,
            progress=lambda m: print(f"  [session{label}] {m} ...", flush=True),
        )
        for name, model in res.models.items():
            print(f"  [session{label}] {name}: all-positions protocol ...", flush=True)
            done["all_positions"][name] = evaluate_sessions(
                model, test, exclude_seen=False, max_positions=max_positions
            )
            row = res.table.loc[name]
            done["models"][name] = {k: float(v) for k, v in row.items()}
            done["fit"][name] = _jsonable(res.fit_info[name])
        done["seconds"] += time.perf_counter() - t0
        if checkpoint is not None:
            checkpoint.write_text(json.dumps(done, default=float), encoding="utf-8")
    rows = {m: done["models"][m] for m in models}
    # n_repeats is counted before any sampling; every position t >= 1 is a prediction
    total = float(np.maximum(test.lengths - 1, 0).sum())
    share = next(iter(rows.values()))["n_repeats"] / max(total, 1.0)
    with_repeats = {}
    for name, r in rows.items():
        with_repeats[name] = {
            k: r[k] * (1.0 - share) for k in ("hit_rate@10", "mrr@10", "hit_rate@20", "mrr@20")
        }
        with_repeats[name]["repeat_share"] = share
    sel = selection_summary(
        {m: r["val_mrr@20"] for m, r in rows.items()},
        {m: r["mrr@20"] for m, r in rows.items()},
        metric="mrr@20",
        baselines=SESSION_BASELINES,
    )
    return {
        "users": snap.num_users,
        "songs": snap.num_songs,
        "plays": snap.num_plays,
        "genres": snap.num_genres,
        "sessions": exp.split.describe()["sessions"],
        "compare_seconds": round(done["seconds"], 1),
        "selected": sel["best"],
        "selection": sel,
        "models": rows,
        "fit": {m: done["fit"][m] for m in models},
        "serving_with_repeats": with_repeats,
        "all_positions": {m: done["all_positions"][m] for m in models},
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if k != "history"}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _mean_sd(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
    }


def summarise(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over seeds, per protocol, model and metric; served vs best baseline."""
    runs = list(per_seed.values())
    out: dict[str, Any] = {}
    for view in ("models", "serving_with_repeats", "all_positions"):
        names = [m for m in runs[0][view] if all(m in r[view] for r in runs)]
        out[view] = {
            m: {k: _mean_sd([r[view][m][k] for r in runs]) for k in SUMMARY} for m in names
        }
    ratios, selected = [], []
    for r in runs:
        base = max((r["models"][b]["mrr@20"] for b in BASELINES if b in r["models"]), default=0)
        ratios.append(r["models"][r["selected"]]["mrr@20"] / base if base else float("nan"))
        selected.append(r["selected"])
    out["served_mrr20_over_best_baseline"] = _mean_sd(ratios)
    out["selected_per_seed"] = selected
    for m in names:
        if m in BASELINES:
            continue
        rel = []
        for r in runs:
            base = max(r["models"][b]["mrr@20"] for b in BASELINES if b in r["models"])
            rel.append(r["models"][m]["mrr@20"] / base)
        out[f"{m}_mrr20_over_best_baseline"] = _mean_sd(rel)
    return out


def run(
    driver: Any,
    settings: Any,
    tmp: Path,
    *,
    quick: bool = False,
    models: tuple[str, ...] = MODELS,
    shapes: tuple[str, ...] = SHAPES,
    seeds: tuple[int, ...] = SEEDS,
    threads: int = 1,
    max_positions: int | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Every shape at every seed: load, export, fit, evaluate; per-seed rows and summaries.

    With ``cache``, exported snapshots and each finished (shape, seed) result are kept there
    and reused, so an interrupted run resumes where it stopped.
    """
    import torch

    torch.set_num_threads(threads)
    out: dict[str, Any] = {
        "benchmark": "quality-session",
        "protocol": "global time cut on session start, 70/10/20 sessions; every next play "
        "predicted from its prefix; full ranking. serving (main): prefix songs are not "
        "candidates and repeat targets are left out; serving_with_repeats: the same lists, "
        "repeat targets count as misses; all_positions: every song a candidate, every "
        "position counts. Served model: best validation MRR@20 (serving protocol).",
        "seeds": list(seeds),
        "quick": quick,
        "max_positions": max_positions,
        "torch_threads": threads,
        "datasets": {},
    }
    for shape in shapes:
        per_seed: dict[str, Any] = {}
        for seed in seeds:
            print(f"== session / {shape} / seed {seed}", flush=True)
            key = json.dumps([shape, seed, quick, list(models), max_positions, threads])
            tag = hashlib.sha1(key.encode()).hexdigest()[:12]
            done = None if cache is None else cache / f"result-session-{tag}.json"
            if done is not None and done.is_file():
                res = json.loads(done.read_text(encoding="utf-8"))  # a run finished earlier
            else:
                snap, timing = snapshot_for(
                    shape, seed, quick=quick, driver=driver, settings=settings, tmp=tmp,
                    cache=cache,
                )  # fmt: skip
                res = run_one(
                    snap,
                    models,
                    threads=threads,
                    max_positions=max_positions,
                    label=f"/{shape}",
                    checkpoint=None if done is None else done.with_suffix(".partial.json"),
                )
                res.update(timing)
                if done is not None:
                    done.write_text(json.dumps(res, default=float), encoding="utf-8")
            per_seed[str(seed)] = res
            print_seed(shape, seed, res)
        out["datasets"][shape] = {"per_seed": per_seed, "summary": summarise(per_seed)}
        print_summary(shape, out["datasets"][shape]["summary"])
    return out


def print_seed(shape: str, seed: int, res: dict[str, Any]) -> None:
    s = res["sessions"]
    first = next(iter(res["models"].values()))
    print(
        f"\nsession / {shape} / seed {seed}: {res['users']:,} users, {res['songs']:,} songs, "
        f"{res['plays']:,} plays, {res['genres']} genres; sessions {s['train']:,} train / "
        f"{s['val']:,} val / {s['test']:,} test; {int(first['n_positions']):,} test predictions "
        f"(repeat targets left out: {int(first['n_repeats']):,})"
    )
    print(f"{'model':<14}" + "".join(f"{c:>13}" for c in (*COLS, "train_s")))
    for m, r in res["models"].items():
        cells = "".join(f"{r[c]:>13.4f}" for c in COLS)
        print(f"{m:<14}{cells}{r['train_seconds']:>13.1f}")
    print("all positions, every song a candidate (repeats are valid targets):")
    for m, r in res["all_positions"].items():
        print(f"{m:<14}" + "".join(f"{r[c]:>13.4f}" for c in COLS[:4]))
    sel = res["selection"]
    print(
        f"served (best validation MRR@20): {sel['best']} {sel['best_val']:.4f}"
        + (
            f", runner-up {sel['runner_up']} {sel['runner_up_val']:.4f} "
            f"({100 * sel['margin']:+.1f}%)"
            if sel.get("runner_up")
            else ""
        )
    )


def print_summary(shape: str, summ: dict[str, Any]) -> None:
    print(f"\nsession / {shape}: mean ± sd over seeds")
    views = ("models", "serving_with_repeats", "all_positions")
    head = ("HR@20", "MRR@20", "HR@20 +rep", "MRR@20 +rep", "HR@20 all", "MRR@20 all")
    print(f"{'model':<14}" + "".join(f"{h:>19}" for h in head))
    for m in summ["models"]:
        cells = []
        for view in views:
            for k in SUMMARY:
                v = summ[view].get(m, {}).get(k)
                cells.append(f"{v['mean']:.4f} ± {v['sd']:.4f}" if v else "-")
        print(f"{m:<14}" + "".join(f"{c:>19}" for c in cells))
    r = summ["served_mrr20_over_best_baseline"]
    print(
        f"served per seed: {', '.join(summ['selected_per_seed'])}; served MRR@20 / best "
        f"baseline: {r['mean']:.3f} ± {r['sd']:.3f} (min {r['min']:.3f})"
    )
