"""Training-curve plots, written straight to PNG.

Uses matplotlib's object API with the Agg canvas (``Figure`` + ``FigureCanvasAgg``), so it
needs no display and never changes the global pyplot backend of the caller.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = ["plot_training_curves"]


def plot_training_curves(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Plot loss curves (top) and validation metrics (bottom) against the epoch; save as PNG.

    Series whose name contains ``"loss"`` go in the top panel, all others in the bottom one;
    each series is drawn against epochs ``1..len(series)``. Non-finite points are left out.

    Args:
        history: ``{"loss": [...], "val_ndcg@20": [...]}``, one value per epoch.
        path: output file; parent directories are created.
        title: figure title (default none).

    Returns:
        The path written.

    Raises:
        ValueError: empty history, or a series with no finite value (named).
    """
    if not history:
        raise ValueError("history must contain at least one series (got none)")
    for name, values in history.items():
        if not any(math.isfinite(float(v)) for v in values):
            raise ValueError(f"series {name!r} has no finite value")
    losses = {k: v for k, v in history.items() if "loss" in k.lower()}
    others = {k: v for k, v in history.items() if k not in losses}
    panels = [(p, label) for p, label in ((losses, "loss"), (others, "validation")) if p]

    fig = Figure(figsize=(7, 3.2 * len(panels)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (series, ylabel) in zip(axes, panels, strict=True):
        for name, values in series.items():
            pts = [(i + 1, float(v)) for i, v in enumerate(values) if math.isfinite(float(v))]
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, markersize=3, label=name)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("epoch")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    log.info("wrote %s", out)
    return out
