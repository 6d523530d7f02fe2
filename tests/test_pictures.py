"""The demo's pictures: explanation graph, attention heat-map, and the attention they read."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gnn import EnhancedGAT, build_train_data
from gnn.core._plots import plot_attention_heatmap, plot_explanation_graph
from gnn.graph._data import random_snapshot
from gnn.users._explained import user_attention

PNG = b"\x89PNG\r\n\x1a\n"


def test_explanation_graph_is_a_png(tmp_path: Path) -> None:
    out = plot_explanation_graph(
        "User U1",
        "Blue (rank 1)",
        [("played", "Song: Red", 0.5), ("artist", "Artist: X", 0.3), ("genre", "Genre: y", 0.2)],
        tmp_path / "sub" / "why.png",
        title="why",
    )
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 5_000


@pytest.mark.parametrize(
    ("evidence", "match"),
    [
        ([], "at least one"),
        ([("played", "Song: Red", -0.1)], "Song: Red"),
        ([("played", "Song: Red", float("nan"))], "finite"),
    ],
)
def test_explanation_graph_refuses_bad_evidence(tmp_path: Path, evidence, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot_explanation_graph("u", "s", evidence, tmp_path / "x.png")


def test_heatmap_checks_its_shape(tmp_path: Path) -> None:
    out = plot_attention_heatmap(
        [[0.1, 0.9], [0.5, 0.5]], ["a", "b"], ["L1 h1", "L1 h2"], tmp_path / "att.png"
    )
    assert out.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="2 x 3"):
        plot_attention_heatmap(
            [[0.1, 0.9], [0.5, 0.5]], ["a", "b"], ["1", "2", "3"], tmp_path / "bad.png"
        )


def test_user_attention_reads_the_users_softmax() -> None:
    torch.manual_seed(0)
    snap = random_snapshot(
        num_users=10, num_songs=25, num_artists=4, num_genres=3, plays_per_user=10
    )
    data = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    model = EnhancedGAT.from_data(data.hetero, embedding_dim=8, heads=2, num_layers=2)
    rec = SimpleNamespace(model=model, name="enhancedgat")
    user = 3
    matrix, rows, cols = user_attention(rec, data, user, top=100)  # type: ignore[arg-type]
    played = np.unique(snap.play_song[snap.play_user == user])
    assert matrix.shape == (len(played), 4) and len(rows) == len(played)
    assert cols == ["L1 h1", "L1 h2", "L2 h1", "L2 h2"]
    # Each head's attention is a softmax over exactly the user's played songs.
    np.testing.assert_allclose(matrix.sum(axis=0), np.ones(4), rtol=1e-5)
    top2, _, _ = user_attention(rec, data, user, top=2)  # type: ignore[arg-type]
    np.testing.assert_allclose(top2, matrix[:2])
    assert top2.mean(axis=1)[0] >= top2.mean(axis=1)[1]
