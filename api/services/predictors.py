"""Next-song and playlist-continuation predictors: the trained task models when there are
any, a real graph fallback otherwise.

The Protocols mirror the interface ``gnn`` exports (``gnn._session`` / ``gnn._playlist``);
they are repeated here so the API does not depend on those modules existing. A loaded
predictor is self-contained and fast, so it is called in a worker thread; the fallbacks are
Cypher over the graph (``FOLLOWED_BY`` transitions, ``CONTAINS`` co-occurrence) and
popularity when nothing in the input is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@runtime_checkable
class NextSongPredictor(Protocol):
    name: str
    run_id: str | None

    def predict_next(
        self,
        *,
        recent_song_ids: Sequence[str],
        user_id: str | None = None,
        at_ms: int | None = None,
        k: int = 10,
    ) -> list[tuple[str, float]]: ...


@runtime_checkable
class PlaylistContinuer(Protocol):
    name: str
    run_id: str | None

    def continue_playlist(
        self, *, song_ids: Sequence[str], name: str | None = None, k: int = 10
    ) -> list[tuple[str, float]]: ...


#: Task -> name of the loader function in ``gnn``.
LOADERS = {"session": "load_next_song_predictor", "playlist": "load_playlist_continuer"}


def load_task_model(task: str, runs_root: Path) -> object | None:
    """The active trained model of ``task`` (``session`` or ``playlist``), or None when
    ``gnn`` has no loader yet, no run is active, or loading fails (logged)."""
    import gnn
    from gnn._registry import get_active

    loader: Callable[..., object] | None = getattr(gnn, LOADERS[task], None)
    if loader is None:
        return None
    try:
        if get_active(runs_root, task=task) is None:
            return None
        return loader(runs_root)
    except Exception as exc:  # noqa: BLE001 - a broken run must not stop the API; fallback
        log.warning(
            "no %s model loaded (%s: %s); using the graph fallback", task, type(exc).__name__, exc
        )
        return None
