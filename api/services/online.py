"""The online comparison of two user-task runs, as the API serves it.

While an experiment runs (``spotify-engine models online --start RUN`` writes ``ONLINE.json``
in the runs folder; every worker picks it up on its periodic refresh), each user is served
the run of their arm (:meth:`gnn.core.OnlineExperiment.arm`, a stable hash, so every worker
agrees): the control (the active run) through the usual path, the challenger scored live by
its own loaded model. Every list a run of the experiment made is queued as an exposure and
written to Neo4j in batches (``(User)-[:SAW]->(Exposure)``) by a background task, off the
request path, so the precomputed hot path stays fast. Popular (cold-start) lists are not
exposures: both arms serve them alike.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from api.services.models import LiveModel, build_live

log = logging.getLogger(__name__)

#: The most exposures written in one transaction.
FLUSH_BATCH = 1000


class OnlineService:
    """The running experiment (if any), the challenger's live model, the exposure queue."""

    def __init__(self, runs_root: Path) -> None:
        self.runs_root = Path(runs_root)
        self.experiment: Any = None
        self.challenger: LiveModel | None = None
        self.error: str | None = None
        self._stamp: tuple[int, int] | None = None
        self._queue: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _file_stamp(self) -> tuple[int, int] | None:
        from gnn.core import ONLINE_FILE

        try:
            st = os.stat(self.runs_root / ONLINE_FILE)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Load a started experiment, drop a stopped one; True when something changed."""
        from gnn.core import get_online, resolve_run

        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            exp = get_online(self.runs_root)
        except Exception as exc:  # noqa: BLE001 - an unreadable file: serve without it
            self.experiment, self.challenger, self.error = None, None, str(exc)
            log.warning("online experiment not loaded: %s", exc)
            return True
        if exp is None:
            self.experiment, self.challenger, self.error = None, None, None
            return True
        try:
            if self.challenger is None or self.challenger.run_id != exp.challenger:
                self.challenger = build_live(resolve_run(self.runs_root, "user", exp.challenger))
            self.experiment, self.error = exp, None
            log.info("online experiment %s: challenger %s", exp.id, exp.challenger)
        except Exception as exc:  # noqa: BLE001 - without its challenger nothing is compared
            self.experiment, self.challenger = None, None
            self.error = f"challenger {exp.challenger} cannot be served: {exc}"
            log.warning("online experiment %s not served: %s", exp.id, self.error)
        return True

    def arm(self, user_id: str) -> str | None:
        """The run this user is assigned to, or None when no experiment runs."""
        exp = self.experiment
        return None if exp is None else exp.arm(user_id)

    def record(self, user_id: str, run_id: str | None, songs: list[str]) -> None:
        """Queue a served list as an exposure when the experiment's run of this user made it."""
        exp = self.experiment
        if exp is None or not songs or run_id != exp.arm(user_id):
            return
        row = {
            "user_id": user_id,
            "experiment": exp.id,
            "run_id": run_id,
            "at": int(time.time() * 1000),
            "songs": songs,
        }
        with self._lock:
            self._queue.append(row)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def flush(self, driver: Any, database: str) -> int:
        """Write the queued exposures (worker thread); returns how many were written. Rows of
        a failed write go back to the queue for the next flush."""
        from graphdb import record_exposures

        with self._lock:
            rows, self._queue = self._queue, []
        written = done = 0
        try:
            for done in range(0, len(rows), FLUSH_BATCH):
                written += record_exposures(driver, database, rows[done : done + FLUSH_BATCH])
        except Exception:
            with self._lock:
                self._queue[:0] = rows[done:]  # the batch that failed and those after it
            raise
        return written
