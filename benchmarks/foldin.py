"""Fold-in (issue 14 item 1): what a brand-new listener gets from a few plays, per trained run.

For every servable user run in ``--runs`` (default: the demo's ``runs/``; train one with
``make demo`` or ``spotify-engine train``) that can fold in a user (EnhancedGAT, EASE^R, ItemKNN,
RP3beta, the blend), and for ``--artists`` artists with at least 8 songs drawn with ``--seed``:
a new user plays 4 of the artist's songs 3 times each and is folded in
(``gnn.users.fold_in``, exactly what ``GET /users/{id}/recommendations`` serves with
``source: fold_in``). Reported per run: the mean number of that artist's other songs in the
top 10 (the issue's test: "post plays of one artist for a new user; their top-10 then
contains that artist's other songs"), the share of users with at least one, and the mean
seconds per fold-in (no evidence; one thread). No Neo4j needed: everything comes from the run
folders. Saves ``benchmarks/results/foldin.json``.

    python benchmarks/foldin.py [--runs runs] [--artists 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--artists", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "foldin.json")
    args = ap.parse_args()

    import torch

    from gnn.core import list_runs
    from gnn.users import fold_in, foldable, load_trained

    torch.set_num_threads(1)
    runs = [
        r for r in list_runs(args.runs) if r.task == "user" and (r.path / "snapshot.npz").exists()
    ]
    results: dict[str, dict[str, float | str | int]] = {}
    for run in runs:
        try:
            rec, snap = load_trained(run)
        except Exception as exc:  # noqa: BLE001 - a run that cannot be rebuilt is reported
            print(f"{run.run_id}: skipped ({exc})")
            continue
        if not foldable(rec):
            print(f"{run.run_id}: {rec.name} cannot fold in a user")
            continue
        artist = np.full(snap.num_songs, -1)
        artist[snap.song_artist[0]] = snap.song_artist[1]
        rng = np.random.default_rng(args.seed)
        pool = [
            a
            for a, n in zip(*np.unique(artist[artist >= 0], return_counts=True), strict=True)
            if n >= 8
        ]
        picked = rng.choice(pool, size=min(args.artists, len(pool)), replace=False)
        hits, seconds = [], []
        for a in picked:
            songs = rng.choice(np.flatnonzero(artist == a), size=4, replace=False)
            plays = {str(snap.song_ids[s]): 3 for s in songs}
            t0 = time.perf_counter()
            got = fold_in(rec, snap, "U_NEW_LISTENER", plays, 10, explain=False)
            seconds.append(time.perf_counter() - t0)
            index = {str(s): i for i, s in enumerate(snap.song_ids)}
            hits.append(sum(int(artist[index[r.song_id]] == a) for r in got.rows))
        results[run.run_id] = {
            "model": rec.name,
            "users": snap.num_users,
            "songs": snap.num_songs,
            "artists_tried": len(picked),
            "same_artist_in_top10_mean": float(np.mean(hits)),
            "share_with_at_least_one": float(np.mean(np.array(hits) > 0)),
            "seconds_per_fold_in_mean": float(np.mean(seconds)),
        }
        r = results[run.run_id]
        print(
            f"{rec.name:14s} {run.run_id}: same-artist songs in top 10 "
            f"{r['same_artist_in_top10_mean']:.2f} (>= 1 for {r['share_with_at_least_one']:.0%}), "
            f"{r['seconds_per_fold_in_mean'] * 1000:.0f} ms per fold-in",
            flush=True,
        )
    if not results:
        print(f"no run in {args.runs} can fold in a user: train one first (make demo)")
        raise SystemExit(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"runs": str(args.runs), "seed": args.seed, "results": results}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
