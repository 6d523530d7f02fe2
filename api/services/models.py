"""The active model runs: listed from the registry, loaded once, reloaded when activated.

The user-recommendation run is rebuilt with ``gnn.users._pipeline.load_trained`` (recommender plus
its training snapshot) and scored in a worker thread. Torch calls are serialised with one
lock: explanations mask edges on the shared module, and two scorings at once would only
fight for the same two cores anyway.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.services.predictors import load_task_model
from spotify_engine.errors import NotFound

log = logging.getLogger(__name__)

TASKS = ("user", "session", "playlist")


@dataclass
class LiveModel:
    """A servable user-recommendation run and the indexes the API needs around it."""

    run_id: str
    name: str
    rec: Any
    snap: Any
    full: Any
    user_index: dict[str, int]
    song_index: dict[str, int]
    #: Sessions per user in the training snapshot: a user with more in the graph now has
    #: plays the run has not seen (folded in, see :attr:`foldable`).
    sessions: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The run's per-artist cap, chosen on validation (None: none; its stored lists obey it).
    max_per_artist: int | None = None

    @functools.cached_property
    def foldable(self) -> bool:  # asked by every request: found once
        from gnn.users import foldable

        return foldable(self.rec)

    @property
    def explainable(self) -> bool:
        from gnn.explain import supports_explanations

        model = getattr(self.rec, "model", None)
        return model is not None and supports_explanations(model)


def build_live(run: Any) -> LiveModel:
    from gnn.users import foldable, load_trained, prepare_fold_in, run_max_per_artist

    rec, snap = load_trained(run)
    from gnn.users import prepare

    exp = prepare(
        snap, test_frac=run.config.get("test_frac", 0.2), val_frac=run.config.get("val_frac", 0.1)
    )
    full = exp.full()
    if foldable(rec):
        prepare_fold_in(rec, full)  # a graph run's cached states, so no request pays for them
    if snap.num_users:
        # The first ranking builds what later ones read (a graph run's embeddings of the
        # whole graph: one forward pass, seconds); build it here, in the loading thread, not
        # on the event loop of the first live request, which would stall every request in
        # flight (issue 14 item 7: the rules load's slowest requests).
        import numpy as np

        rec.recommend(np.zeros(1, dtype=np.int64), 1, full)
    return LiveModel(
        run_id=run.run_id,
        name=rec.name,
        rec=rec,
        snap=snap,
        full=full,
        user_index={str(u): i for i, u in enumerate(snap.user_ids)},
        song_index={str(s): i for i, s in enumerate(snap.song_ids)},
        sessions=_sessions_per_user(snap),
        max_per_artist=run_max_per_artist(run.fit_info),
    )


def _sessions_per_user(snap: Any) -> dict[str, int]:
    import numpy as np

    pairs = np.unique(np.stack([snap.play_user, snap.play_session]), axis=1)
    counts = np.bincount(pairs[0], minlength=snap.num_users)
    return {str(u): int(n) for u, n in zip(snap.user_ids, counts.tolist(), strict=True)}


class ModelService:
    """Active runs per task, the loaded user model and task predictors.

    :meth:`refresh` is cheap when nothing changed (it compares the ACTIVE files' mtimes) and
    is called periodically by the app; a failed load keeps serving without that model
    (precomputed rows, graph fallbacks, popularity) and says so in ``errors``.
    """

    def __init__(self, runs_root: Path, torch_threads: int = 2, live_explain: bool = False):
        self.runs_root = Path(runs_root)
        self.torch_threads = torch_threads
        #: Live explanations cost (k + embedding dim) backward passes over the whole graph,
        #: seconds to minutes per request on a real graph; precomputed ones are free.
        self.live_explain = live_explain
        self.active: dict[str, str | None] = dict.fromkeys(TASKS)
        self.live: LiveModel | None = None
        self.predictors: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._stamp: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def _files_stamp(self) -> tuple[Any, ...]:
        out: list[Any] = []
        for task in TASKS:
            name = "ACTIVE" if task == "user" else f"ACTIVE-{task}"
            try:
                st = os.stat(self.runs_root / name)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def refresh(self, *, force: bool = False) -> bool:
        """Reload what changed; returns True when something was (re)loaded."""
        with self._lock:
            stamp = self._files_stamp()
            if not force and stamp == self._stamp:
                return False
            self._stamp = stamp
            import torch

            from gnn.core import get_active, resolve_run

            torch.set_num_threads(self.torch_threads)
            for task in TASKS:
                try:
                    self.active[task] = get_active(self.runs_root, task=task)
                except (OSError, ValueError) as exc:
                    self.active[task] = None
                    self.errors[task] = f"unreadable active run: {exc}"
            run_id = self.active["user"]
            if run_id is None:
                self.live = None
            elif self.live is None or self.live.run_id != run_id:
                try:
                    self.live = build_live(resolve_run(self.runs_root, "user", run_id))
                    self.errors.pop("user", None)
                    log.info("loaded user model %s", run_id)
                except Exception as exc:  # noqa: BLE001 - serve without live scoring
                    self.live = None
                    self.errors["user"] = f"{type(exc).__name__}: {exc}"
                    log.warning("active run %s cannot be served live: %s", run_id, exc)
            for task in ("session", "playlist"):
                model = load_task_model(task, self.runs_root) if self.active[task] else None
                if model is None:
                    self.predictors.pop(task, None)
                else:
                    self.predictors[task] = model
            return True

    def loaded(self) -> dict[str, bool]:
        return {"user": self.live is not None, **{t: t in self.predictors for t in TASKS[1:]}}

    def runs(self) -> list[Any]:
        from gnn.core import list_runs

        return list_runs(self.runs_root)

    def run_info(self, run_id: str) -> Any:
        from gnn.core import load_run

        try:
            return load_run(self.runs_root, run_id)
        except (LookupError, ValueError):
            raise NotFound(f"no run {run_id!r} in {self.runs_root}") from None
