"""Plots written straight to PNG: training curves, an explanation graph, an attention heat-map.

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


#: Colours of evidence kinds in the explanation graph (others are grey).
KIND_COLOURS = {
    "played": "#1db954",
    "similar_user": "#3b82f6",
    "artist": "#f59e0b",
    "genre": "#a855f7",
    "genre_affinity": "#a855f7",
    "playlist": "#ef4444",
}


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


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110)
    log.info("wrote %s", out)
    return out


def plot_explanation_graph(
    user: str,
    song: str,
    evidence: Sequence[tuple[str, str, float]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Draw user -> evidence -> recommended song, each evidence edge as wide as its weight.

    Args:
        user: label of the user node (left).
        song: label of the recommended song (right).
        evidence: ``(kind, label, weight)`` rows, e.g. ``("listened", "Song: Blue", 0.41)``;
            weights are the normalised attributions (they need not sum to 1).
        path: output PNG; parent directories are created.
        title: figure title (default none).

    Raises:
        ValueError: no evidence, or a negative or non-finite weight (named).
    """
    if not evidence:
        raise ValueError("evidence must hold at least one row (got none)")
    for _kind, label, weight in evidence:
        if not math.isfinite(float(weight)) or float(weight) < 0:
            raise ValueError(
                f"evidence weight must be finite and >= 0 (got {weight} for {label!r})"
            )
    n = len(evidence)
    top = max(float(w) for _, _, w in evidence) or 1.0
    fig = Figure(figsize=(9, max(2.6, 0.75 * n + 1.2)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(-0.1, 3.1)
    ax.set_ylim(-0.8, n - 0.2)
    ax.axis("off")
    mid = (n - 1) / 2
    box = {"boxstyle": "round,pad=0.4", "linewidth": 1.2}
    ax.text(0.1, mid, user, ha="center", va="center", bbox={**box, "fc": "#e5e7eb"}, fontsize=9)
    ax.text(
        2.9,
        mid,
        song,
        ha="center",
        va="center",
        bbox={**box, "fc": "#bbf7d0"},
        fontsize=9,
        wrap=True,
    )
    for row, (kind, label, weight) in enumerate(evidence):
        y = n - 1 - row
        colour = KIND_COLOURS.get(kind, "#6b7280")
        width = 0.8 + 9.0 * float(weight) / top
        ax.plot([0.35, 1.15], [mid, y], color="#9ca3af", linewidth=1.0, zorder=1)
        ax.plot([1.85, 2.6], [y, mid], color=colour, linewidth=width, alpha=0.75, zorder=1)
        ax.text(
            1.5,
            y,
            f"{label}\n{kind}",
            ha="center",
            va="center",
            fontsize=8,
            bbox={**box, "fc": "white", "ec": colour},
        )
        ax.text(
            2.0,
            y + 0.22,
            f"{float(weight):.2f}",
            ha="center",
            fontsize=8,
            color=colour,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
        )
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_attention_heatmap(
    matrix: Sequence[Sequence[float]],
    rows: Sequence[str],
    columns: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """A heat-map of attention weights: one row per neighbour, one column per layer and head.

    Raises:
        ValueError: the matrix shape does not match the labels (both named).
    """
    data = [[float(v) for v in r] for r in matrix]
    if len(data) != len(rows) or any(len(r) != len(columns) for r in data) or not data:
        raise ValueError(
            f"matrix must be {len(rows)} x {len(columns)} and non-empty "
            f"(got {len(data)} x {len(data[0]) if data else 0})"
        )
    fig = Figure(figsize=(1.2 + 0.9 * len(columns) + 2.5, 1.2 + 0.32 * len(rows)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(data, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(columns)), list(columns), fontsize=8)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    for i, r in enumerate(data):
        for j, v in enumerate(r):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(im, ax=ax, fraction=0.05, label="attention")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)
