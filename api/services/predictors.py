"""Next-song and playlist-continuation predictors: the trained task models when there are
any, a real graph fallback otherwise.

The interfaces are ``gnn``'s (``NextSongPredictor``, ``PlaylistContinuer``). A loaded
predictor is self-contained and fast, so it is called in a worker thread; the fallbacks are
Cypher over the graph (``FOLLOWED_BY`` transitions, ``CONTAINS`` co-occurrence) and
popularity when nothing in the input is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import cast

import gnn
from gnn import NextSongPredictor, PlaylistContinuer
from gnn.core import get_active

log = logging.getLogger(__name__)

__all__ = ["LOADERS", "NextSongPredictor", "PlaylistContinuer", "load_task_model"]

#: Task -> the loader of its active run.
LOADERS: dict[str, Callable[[Path], object]] = {
    "session": gnn.load_next_song_predictor,
    "playlist": gnn.load_playlist_continuer,
}


def load_task_model(task: str, runs_root: Path) -> NextSongPredictor | PlaylistContinuer | None:
    """The active trained model of ``task`` (``session`` or ``playlist``), or None when no run
    is active or loading fails (logged; the graph fallback answers)."""
    loader = LOADERS[task]
    try:
        if get_active(runs_root, task=task) is None:
            return None
        return cast(NextSongPredictor | PlaylistContinuer, loader(runs_root))
    except Exception as exc:  # noqa: BLE001 - a broken run must not stop the API; fallback
        log.warning(
            "no %s model loaded (%s: %s); using the graph fallback", task, type(exc).__name__, exc
        )
        return None
