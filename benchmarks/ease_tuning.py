"""EASE^R's regularisation tuned on the most-listened songs against the full grid (issue 18).

``TasteHybrid`` fits its EASE^R with ``tune_items=5000``: the validation grid of ``l`` runs on
an EASE^R of the 5,000 most-listened songs and only the chosen ``l`` is fitted on every song
(one 20,000 x 20,000 inverse instead of three). This checks the shortcut: per snapshot it fits
EASE^R both ways and prints, for each, the ``l`` chosen, validation NDCG@20 per ``l``, test
NDCG@10 and seconds. Saves ``benchmarks/results/ease_tuning.json`` (rows of snapshots not
named this time are kept when they were measured with the same ``--tune-items``).

    python benchmarks/ease_tuning.py SNAPSHOT.npz [SNAPSHOT.npz ...] [--tune-items 5000]

Snapshots are exported from Neo4j (``spotify-engine train --export-only``, or the files
``benchmarks/quality.py --snapshot-cache DIR`` leaves).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from gnn import EASE, evaluate, prepare  # noqa: E402
from gnn.graph import load_snapshot  # noqa: E402

RESULTS = HERE / "results" / "ease_tuning.json"


def _one(path: Path, tune_items: int) -> dict:
    snap = load_snapshot(path)
    exp = prepare(snap)
    val = (exp.train, exp.val_relevant)
    row: dict = {"users": snap.num_users, "songs": snap.num_songs, "plays": snap.num_plays}
    for name, model in (("proxy", EASE(tune_items=tune_items)), ("full_grid", EASE())):
        t0 = time.perf_counter()
        info = model.fit(exp.train, val=val)
        seconds = time.perf_counter() - t0
        row[name] = {
            "l2": info["l2"],
            "val_ndcg@20": info.get("val_tuning") or info["val"],
            "seconds": round(seconds, 1),
            "test_ndcg@10": round(
                float(evaluate(model, snap, exp.split, "test", (10,))["ndcg@10"]), 4
            ),
        }
        if name == "proxy":
            row[name]["tuned_on_items"] = info.get("tuned_on_items")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshots", nargs="+", type=Path)
    parser.add_argument("--tune-items", type=int, default=5000)
    args = parser.parse_args()
    missing = [s for s in args.snapshots if not s.is_file()]
    if missing:
        sys.exit(f"no snapshot file {missing[0]}")
    out: dict = {"tune_items": args.tune_items, "runs": {}}
    if RESULTS.is_file():  # keep the other snapshots' rows measured with the same tune_items
        saved = json.loads(RESULTS.read_text())
        if saved.get("tune_items") == args.tune_items:
            out["runs"] = saved.get("runs", {})
    for path in args.snapshots:
        row = out["runs"][path.stem] = _one(path, args.tune_items)
        p, f = row["proxy"], row["full_grid"]
        print(
            f"{path.stem}: proxy l2 {p['l2']:g} ({p['seconds']:.0f}s, test NDCG@10 "
            f"{p['test_ndcg@10']:.4f}), full grid l2 {f['l2']:g} ({f['seconds']:.0f}s, "
            f"{f['test_ndcg@10']:.4f}); validation NDCG@20 proxy "
            + ", ".join(f"{k}: {v:.4f}" for k, v in p["val_ndcg@20"].items())
            + "; full "
            + ", ".join(f"{k}: {v:.4f}" for k, v in f["val_ndcg@20"].items()),
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
