"""Next song in a session: the quality table of ``benchmarks/quality.py --task session``.

Data: the synthetic generator at about 2,000 users / 20,000 songs / 600,000 plays (``--quick``:
500 / 4,000 / 100,000), loaded into Neo4j and exported from it (the product's real path).
Protocol (``gnn.sessions``): global time cut on session start (last 20% of sessions test, the
10% before validation); every next play of a held-out session predicted from its prefix;
full ranking over the catalogue. Main table: the serving protocol (songs of the prefix are
not candidates, repeat targets left out); also reported: every position with every song a
candidate (``all_positions``). The served model is the best by validation MRR@20.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

MODELS = ("popularity", "markov", "sknn", "sessiongnn")
COLS = ("hit_rate@10", "mrr@10", "hit_rate@20", "mrr@20", "coverage@20", "val_mrr@20")


def run(
    driver: Any,
    settings: Any,
    tmp: Path,
    *,
    quick: bool = False,
    models: tuple[str, ...] = MODELS,
    threads: int = 1,
) -> dict[str, Any]:
    """Generate, load, export, fit every model, evaluate both protocols; returns the table."""
    import torch

    from gnn.graph import export_snapshot
    from gnn.sessions import compare_session_models, evaluate_sessions, prepare_sessions
    from graphdb import apply_schema, wipe_graph
    from ingest import SyntheticConfig, ingest

    torch.set_num_threads(threads)
    cfg = (
        SyntheticConfig(users=500, songs=4000, artists=400, mean_plays_per_user=200, seed=42)
        if quick
        else SyntheticConfig(
            users=2000, songs=20000, artists=2000, mean_plays_per_user=300, seed=42
        )
    )
    wipe_graph(driver, settings.neo4j_database)
    apply_schema(driver, settings.neo4j_database)
    t0 = time.perf_counter()
    ingest(
        "synthetic", None, driver=driver, settings=settings, out_dir=tmp / "session", synthetic=cfg
    )
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap = export_snapshot(driver, settings.neo4j_database)
    export_s = time.perf_counter() - t0
    exp = prepare_sessions(snap)
    overrides = {"sessiongnn": {"threads": threads}}
    t0 = time.perf_counter()
    res = compare_session_models(
        exp,
        list(models),
        overrides=overrides,
        progress=lambda m: print(f"  [session] {m} ...", flush=True),
    )
    compare_s = time.perf_counter() - t0
    rows = {m: {k: float(v) for k, v in r.items()} for m, r in res.table.iterrows()}
    test = exp.part("test")
    all_positions = {}
    for name, model in res.models.items():
        print(f"  [session] {name}: all-positions protocol ...", flush=True)
        all_positions[name] = evaluate_sessions(model, test, exclude_seen=False)
    return {
        "users": snap.num_users,
        "songs": snap.num_songs,
        "plays": snap.num_plays,
        "sessions": exp.split.describe()["sessions"],
        "protocol": "global time cut on session start, 70/10/20 sessions; every next play "
        "predicted from its prefix; full ranking; serving protocol: prefix songs are not "
        "candidates and repeat targets are left out",
        "load_seconds": round(load_s, 1),
        "export_seconds": round(export_s, 2),
        "compare_seconds": round(compare_s, 1),
        "torch_threads": threads,
        "selected": res.best,
        "models": rows,
        "all_positions": all_positions,
    }


def print_table(res: dict[str, Any]) -> None:
    s = res["sessions"]
    print(
        f"\nsession: {res['users']:,} users, {res['songs']:,} songs, {res['plays']:,} plays; "
        f"sessions {s['train']:,} train / {s['val']:,} val / {s['test']:,} test; "
        f"{int(next(iter(res['models'].values()))['n_positions']):,} test predictions"
    )
    print(f"{'model':<12}" + "".join(f"{c:>13}" for c in (*COLS, "train_s")))
    for m, r in res["models"].items():
        cells = "".join(f"{r[c]:>13.4f}" for c in COLS)
        print(f"{m:<12}{cells}{r['train_seconds']:>13.1f}")
    print("all positions, every song a candidate (repeats count):")
    for m, r in res["all_positions"].items():
        print(f"{m:<12}" + "".join(f"{r[c]:>13.4f}" for c in COLS[:4]))
    print(f"selected by validation MRR@20: {res['selected']}")
