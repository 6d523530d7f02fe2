"""Explanations from the model itself (issue 5): exact gradients, isolation, fidelity, reasons."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn.explain._attribution import GradientExplainer, edge_masks
from gnn.explain._reasons import NamedEvidence, reason_text
from gnn.graph._data import build_train_data, random_snapshot
from gnn.users._models import EnhancedGAT


@pytest.fixture(
    scope="module",
    params=[{}, {"conv": "gat", "weighted_edge_types": ()}],
    ids=["gatv2-weighted", "gat-unweighted"],
)
def setup(request: pytest.FixtureRequest) -> tuple[EnhancedGAT, object]:
    torch.manual_seed(0)
    snap = random_snapshot(
        num_users=12, num_songs=30, num_artists=4, num_genres=3, plays_per_user=12
    )
    data = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    model = EnhancedGAT.from_data(
        data.hetero, embedding_dim=8, heads=2, num_layers=2, dropout=0.0, **request.param
    )
    with torch.no_grad():  # larger residual scales, so message passing matters in the test
        for scale in model.scales:
            scale.fill_(1.0)
    model.eval()
    return model, data


def _score(model: EnhancedGAT, data: object, u: int, i: int, masks: dict | None = None) -> float:
    with torch.no_grad(), edge_masks(model, masks or {}):
        emb = model.embed(data.hetero)
        b = model.bias(data.hetero, torch.as_tensor([i]))
        return float((emb["user"][u] * emb["song"][i]).sum() + (b[0] if b is not None else 0))


def _unplayed(data: object, u: int) -> int:
    m = data.matrix
    played = set(m.indices[m.indptr[u] : m.indptr[u + 1]].tolist())
    return next(i for i in range(data.num_songs) if i not in played)


def test_attribution_is_the_derivative_of_the_score(setup: tuple) -> None:
    """Each evidence weight equals d score / d mask of that edge (finite differences)."""
    model, data = setup
    u = 3
    i = _unplayed(data, u)
    ex = GradientExplainer(model, data.hetero).explain(np.array([u]), np.array([[i]]), top=50)
    evidence = ex[0][0].evidence
    assert evidence, "expected positive evidence"
    type_of = {
        "played": ("song", "listened_by", "user"),
        "genre_affinity": ("genre", "liked_by", "user"),
        "similar_user": ("user", "listened", "song"),
        "artist": ("artist", "performs", "song"),
        "genre": ("genre", "has_song", "song"),
    }
    eps = 1e-3
    checked = 0
    for a in evidence[:6]:
        et = type_of[a.kind]
        ei = data.hetero[et].edge_index
        dst = u if et[2] == "user" else i
        e = int(((ei[0] == a.node) & (ei[1] == dst)).nonzero()[0, 0])
        mask = torch.ones(ei.size(1))
        mask[e] -= eps
        numeric = (_score(model, data, u, i) - _score(model, data, u, i, {et: mask})) / eps
        assert a.weight == pytest.approx(numeric, rel=0.05, abs=1e-4), a
        checked += 1
    assert checked >= 3


def test_explaining_many_users_at_once_equals_one_at_a_time(setup: tuple) -> None:
    """The isolation argument: batching users does not mix their attributions."""
    model, data = setup
    users = np.array([0, 1, 2, 5])
    songs = np.array([[_unplayed(data, u), _unplayed(data, u) + 1] for u in users])
    songs = np.minimum(songs, data.num_songs - 1)
    together = GradientExplainer(model, data.hetero).explain(users, songs, top=8)
    for n, u in enumerate(users):
        alone = GradientExplainer(model, data.hetero).explain(
            np.array([u]), songs[n : n + 1], top=8
        )
        for r in range(songs.shape[1]):
            a = [(x.kind, x.node, round(x.weight, 5)) for x in together[n][r].evidence]
            b = [(x.kind, x.node, round(x.weight, 5)) for x in alone[0][r].evidence]
            assert a == b
            np.testing.assert_array_equal(together[n][r].played, alone[0][r].played)


def test_played_ranking_only_holds_history(setup: tuple) -> None:
    model, data = setup
    u = 4
    ex = GradientExplainer(model, data.hetero).explain(
        np.array([u]), np.array([[_unplayed(data, u)]])
    )
    m = data.matrix
    history = set(m.indices[m.indptr[u] : m.indptr[u + 1]].tolist())
    assert set(ex[0][0].played.tolist()) <= history
    assert len(ex[0][0].evidence) <= 5


def test_masks_are_removed_after_use(setup: tuple) -> None:
    model, data = setup
    before = _score(model, data, 0, 1)
    with edge_masks(
        model,
        {
            ("song", "listened_by", "user"): torch.zeros(
                data.hetero["song", "listened_by", "user"].edge_index.size(1)
            )
        },
    ):
        pass
    assert _score(model, data, 0, 1) == pytest.approx(before)


def test_reason_text_uses_the_evidence_in_weight_order() -> None:
    text = reason_text(
        [
            NamedEvidence("played", "Blue River", 0.4, artist="Kai"),
            NamedEvidence("played", "Red Sky", 0.2, artist="Kai"),
            NamedEvidence("genre_affinity", "Indie Rock", 0.3),
        ]
    )
    assert (
        text
        == "Because you played “Blue River” and “Red Sky” by Kai, and you listen to a lot of Indie Rock."
    )
    assert reason_text([]) == "Popular with listeners like you."
    two = reason_text([NamedEvidence("genre", "Jazz", 0.9), NamedEvidence("artist", "Nina", 0.1)])
    assert two == "Because it is Jazz, and it is by Nina."


def test_masks_of_ones_change_nothing(setup: tuple) -> None:
    """The explanation path (edge-wise propagation with masks) computes the served scores."""
    model, data = setup
    assert model.lightgcn_path, "the readout under test includes the LightGCN path"
    ones = {
        et: torch.ones(data.hetero[et].edge_index.size(1))
        for et in (("user", "listened", "song"), ("song", "listened_by", "user"))
    }
    for u, i in ((0, 3), (5, 7), (9, 20)):
        assert _score(model, data, u, i, ones) == pytest.approx(_score(model, data, u, i), rel=1e-5)
