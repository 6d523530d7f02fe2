"""Diversity control (issue 14 item 4): the effect of ``max_per_artist`` on every task's top 10.

Per data shape and generator seed (``--shapes``, ``--seeds``, default generator,lastfm,small
at 42,43,44), the graph is loaded into Neo4j and exported from it as ``benchmarks/quality.py``
does (``generator`` and ``lastfm`` at its ``--quick`` size unless ``--full``: 500 users / 4,000
songs; ``small``: 300 / 3,000; ``lastfm`` goes through the Last.fm-1K reader, no genres). Then,
for each cap N in none, 1, 2, 3 (at most N songs of one artist in a list, kept in score order
from a deeper ranking, as the API cuts, ``gnn.users.cap_ranked``):

- user task: EASE^R (l2 tuned on validation) ranks each user; NDCG@10 on the validation plays
  (``gnn.users.choose_cap``, what ``train`` records) and on the test plays, coverage@10 and
  intra-list artist diversity (distinct artists / list length) of the validation lists;
- session task (next song, ``gnn.sessions``): a first-order Markov model on the training
  sessions; MRR@10 and HR@10 of the held-out next song on validation and test;
- playlist task (continuation, ``gnn.playlists``, shapes with playlists): ItemKNN on the
  training playlists; NDCG@10 and recall@10 of the held-out tracks on validation and test.

A default cap for a task is the N with the best mean VALIDATION figure over shapes and seeds
(ties to the looser cap: a cap must earn its place); test figures are reported beside it, never
used to choose. Mean and sd over seeds per shape. Saves ``benchmarks/results/diversity.json``.

It wipes the Neo4j instance it connects to (``SPOTIFY_ENGINE_NEO4J_HOME`` and ports; by
default ``~/.spotify-engine/neo4j-bench`` at 27687/27474, as ``quality.py``).

    python benchmarks/diversity.py [--shapes generator,lastfm,small] [--seeds 42,43,44] [--full]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault(
    "SPOTIFY_ENGINE_NEO4J_HOME", str(Path.home() / ".spotify-engine" / "neo4j-bench")
)
os.environ.setdefault("SPOTIFY_ENGINE_BOLT_PORT", "27687")
os.environ.setdefault("SPOTIFY_ENGINE_HTTP_PORT", "27474")

import numpy as np  # noqa: E402

from gnn.core import ndcg_at_k  # noqa: E402
from gnn.graph import export_snapshot, relevant_items  # noqa: E402
from gnn.playlists import (  # noqa: E402
    PlaylistCorpus,
    evaluate_cases,
    make_cases,
    make_playlist_model,
    split_playlists,
)
from gnn.sessions import evaluate_sessions, make_session_model, prepare_sessions  # noqa: E402
from gnn.users import EASE, cap_ranked, prepare, song_artists  # noqa: E402
from graphdb import LocalServer, connect, verify  # noqa: E402
from spotify_engine.settings import get_settings  # noqa: E402

CAPS: tuple[int | None, ...] = (None, 1, 2, 3)
K = 10
#: Ranked before the cap cuts to K (the API reads max(10k, 100)).
DEPTH = 200


def _sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _label(cap: int | None) -> str:
    return "none" if cap is None else str(cap)


def _capped(ids: np.ndarray, scores: np.ndarray, artists: np.ndarray, cap: int | None) -> Any:
    """The first K of each ranked row, at most ``cap`` per artist (None: no cap)."""
    if cap is None:
        return ids[:, :K]
    return cap_ranked(ids, scores, artists, K, cap)[0]


def user_task(snap: Any) -> dict[str, Any]:
    exp = prepare(snap)
    rec = EASE()
    rec.fit(exp.train, val=(exp.train, exp.val_relevant))
    artists = song_artists(snap)
    depth = min(DEPTH, snap.num_songs)
    phases = {}
    for phase, relevant in (
        ("val", exp.val_relevant),
        ("test", relevant_items(snap, exp.split, "test")),
    ):
        users = np.array([u for u, r in enumerate(relevant) if len(r)], dtype=np.int64)
        ranked = rec.recommend(users, depth, exp.observed(phase))
        phases[phase] = (users, [relevant[u] for u in users], ranked)
    out: dict[str, Any] = {}
    for cap in CAPS:
        row: dict[str, float] = {}
        for phase, (_, relevant, ranked) in phases.items():
            lists = _capped(*ranked, artists, cap)
            row[f"{phase}_ndcg@10"] = float(np.mean(ndcg_at_k(lists, relevant, K)))
            if phase == "val":
                row["coverage@10"] = float(len(np.unique(lists[lists >= 0])) / snap.num_songs)
                row["artist_diversity@10"] = float(
                    np.mean(
                        [
                            len({int(artists[i]) for i in r if i >= 0})
                            / max(int((r >= 0).sum()), 1)
                            for r in lists
                        ]
                    )
                )
        out[_label(cap)] = row
    return {"model": "ease", "val_users": int(len(phases["val"][0])), "caps": out}


class _CappedSession:
    """A session model whose lists are cut at ``cap`` songs per artist (for the harness)."""

    def __init__(self, model: Any, artists: np.ndarray, cap: int | None) -> None:
        self.model, self.artists, self.cap = model, artists, cap
        self.max_len = model.max_len

    def rank(self, batch: Any, k: int, *, exclude_seen: bool = True) -> Any:
        if self.cap is None:
            return self.model.rank(batch, k, exclude_seen=exclude_seen)
        ids, scores = self.model.rank(batch, max(DEPTH, k), exclude_seen=exclude_seen)
        got, got_scores, _ = cap_ranked(ids, scores, self.artists, k, self.cap)
        return got, got_scores


def session_task(snap: Any) -> dict[str, Any]:
    exp = prepare_sessions(snap)
    train, val, test = exp.part("train"), exp.part("val"), exp.part("test")
    model = make_session_model("markov")
    model.fit(train, val=val)
    artists = song_artists(snap)
    assert train.num_songs == snap.num_songs
    out: dict[str, Any] = {}
    for cap in CAPS:
        row: dict[str, float] = {}
        for phase, part in (("val", val), ("test", test)):
            got = evaluate_sessions(_CappedSession(model, artists, cap), part, ks=(K,))
            row[f"{phase}_mrr@10"] = got[f"mrr@{K}"]
            row[f"{phase}_hit_rate@10"] = got[f"hit_rate@{K}"]
        out[_label(cap)] = row
    return {"model": "markov", "caps": out}


def playlist_task(snap: Any) -> dict[str, Any] | None:
    if snap.num_playlists < 3:
        return None
    corpus = PlaylistCorpus.from_snapshot(snap)
    split = split_playlists(corpus, seed=0)
    val_cases, test_cases = make_cases(corpus, split.val), make_cases(corpus, split.test)
    model = make_playlist_model("itemknn")
    model.fit(corpus, split.train, val=val_cases)
    artists = np.asarray(corpus.song_artist, dtype=np.int64)
    out: dict[str, Any] = {}
    for cap in CAPS:

        def rank(seeds: Any, names: Any, cap: int | None = cap) -> np.ndarray:
            ids = model.rank(seeds, names, DEPTH)
            # rank order as the score (cap_ranked keeps order and drops -inf pads)
            order = np.broadcast_to(-np.arange(ids.shape[1], dtype=np.float32), ids.shape)
            return _capped(ids, np.where(ids >= 0, order, -np.inf), artists, cap)

        row: dict[str, float] = {}
        for phase, cases in (("val", val_cases), ("test", test_cases)):
            got = evaluate_cases(rank, cases, corpus.song_artist)["overall"]
            row[f"{phase}_ndcg@10"] = got[f"ndcg@{K}"]  # type: ignore[index]
            row[f"{phase}_recall@10"] = got[f"recall@{K}"]  # type: ignore[index]
        out[_label(cap)] = row
    return {"model": "itemknn", "val_cases": len(val_cases), "caps": out}


def _mean_sd(values: list[float]) -> dict[str, float]:
    return {
        "mean": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
    }


def summarise(per: dict[str, dict[str, Any]], task: str) -> dict[str, Any]:
    """Per shape and over everything: mean and sd of each figure per cap; the default cap."""
    runs = {key: r[task] for key, r in per.items() if r.get(task)}
    if not runs:
        return {}
    metrics = list(next(iter(runs.values()))["caps"]["none"])
    shapes = sorted({key.split("/")[0] for key in runs})
    by_shape = {
        shape: {
            c: {
                m: _mean_sd(
                    [r["caps"][c][m] for key, r in runs.items() if key.startswith(shape + "/")]
                )
                for m in metrics
            }
            for c in map(_label, CAPS)
        }
        for shape in shapes
    }
    overall = {
        c: {m: _mean_sd([r["caps"][c][m] for r in runs.values()]) for m in metrics}
        for c in map(_label, CAPS)
    }
    val_metric = next(m for m in metrics if m.startswith("val_"))
    best = max(
        map(_label, CAPS),
        key=lambda c: (round(overall[c][val_metric]["mean"], 4), c == "none", c),
    )
    return {
        "by_shape": by_shape,
        "overall": overall,
        "chosen_by": val_metric,
        "best_on_validation": best,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="generator,lastfm,small")
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--full", action="store_true", help="quality.py's full sizes (slow)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "diversity.json")
    args = ap.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    quality = _sibling("quality")
    loader = _sibling("_quality_session")
    settings = get_settings()
    if settings.uses_local_server:
        server = LocalServer(settings)
        server.install()
        server.start()
    driver = connect(settings)
    verify(driver)
    t0 = time.perf_counter()
    per: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            for seed in seeds:
                key = f"{shape}/{seed}"
                cfg = quality.user_config(shape, not args.full, seed)
                folder = Path(tmp) / key.replace("/", "-")
                loader.load_shape(
                    "lastfm" if shape == "lastfm" else "generator", cfg, driver, settings, folder
                )
                snap = export_snapshot(driver, settings.neo4j_database)
                per[key] = {
                    "users": int(snap.num_users),
                    "songs": int(snap.num_songs),
                    "user": user_task(snap),
                    "session": session_task(snap),
                    "playlist": playlist_task(snap),
                }
                u = per[key]["user"]["caps"]
                print(
                    f"{key:14s} user val NDCG@10 "
                    + " ".join(f"{c}:{u[c]['val_ndcg@10']:.4f}" for c in u)
                    + "  session val MRR@10 "
                    + " ".join(
                        f"{c}:{v['val_mrr@10']:.4f}" for c, v in per[key]["session"]["caps"].items()
                    ),
                    flush=True,
                )
    driver.close()
    result = {
        "k": K,
        "depth": DEPTH,
        "caps": [_label(c) for c in CAPS],
        "sizes": "full" if args.full else "quick",
        "shapes": shapes,
        "seeds": seeds,
        "per_run": per,
        "summary": {t: summarise(per, t) for t in ("user", "session", "playlist")},
        "seconds": round(time.perf_counter() - t0, 1),
        "command": "python benchmarks/diversity.py " + " ".join(sys.argv[1:]),
    }
    for task, summ in result["summary"].items():
        if not summ:
            continue
        print(
            f"\n{task}: default on validation ({summ['chosen_by']}): {summ['best_on_validation']}"
        )
        for c, figures in summ["overall"].items():
            print(
                f"  cap {c:>4} "
                + "  ".join(f"{m} {v['mean']:.4f}+-{v['sd']:.4f}" for m, v in figures.items())
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
