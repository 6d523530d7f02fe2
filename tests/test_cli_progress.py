"""The CLI's progress bars render every phase the packages report (a ``train`` phase of
total 1 once made the demo crash on its first refresh: the bar's total was None)."""

from __future__ import annotations

import io

from rich.console import Console

import cli._common as common


def test_bars_render_training_and_write_back_phases(monkeypatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=100, force_terminal=True))
    with common.progress_bars() as bar:
        cb = common._bar_callback(bar, {"train": "train enhancedgat"})
        cb("train", 0, 1)
        bar.refresh()
        cb("train", 1, 1)
        cb("recommend + explain", 3, 10)
        cb("write back", 0, 0)
        bar.refresh()
        described = {t.description: (t.completed, t.total) for t in bar.tasks}
    assert described == {
        "train enhancedgat": (1, 1),
        "recommend + explain": (3, 10),
        "write back": (0, 1),
    }
    assert "train enhancedgat" in out.getvalue()
