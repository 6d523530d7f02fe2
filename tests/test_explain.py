"""Explanations from the model itself (issue 5): exact gradients, isolation, fidelity, reasons;
exact parts of the linear models and the truth filter before write-back (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn.explain._attribution import GradientExplainer, edge_masks
from gnn.explain._reasons import NO_EVIDENCE, NamedEvidence, choose_reason, reason_text
from gnn.graph._data import build_train_data, random_snapshot
from gnn.users import (
    EASE,
    Explained,
    ItemKNN,
    Popularity,
    explainable,
    genre_listening,
    recommend_and_explain,
    similar_songs,
    writeback_rows,
)
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
            NamedEvidence("genre_affinity", "Indie Rock", 0.3, share_of_plays=0.384),
        ]
    )
    assert (
        text
        == "Because you played “Blue River” and “Red Sky” by Kai, and 38% of your plays are Indie Rock."
    )
    assert reason_text([]) == NO_EVIDENCE
    two = reason_text([NamedEvidence("genre", "Jazz", 0.9), NamedEvidence("artist", "Nina", 0.1)])
    assert two == "Because it is Jazz, and it is by Nina."
    who = reason_text(
        [
            NamedEvidence("similar_user", "U7", 0.5, songs_in_common=12),
            NamedEvidence("similar_user", "U9", 0.2, songs_in_common=1),
            NamedEvidence("genre_affinity", "Pop", 0.1, share_of_plays=0.5),
        ]
    )
    assert who == (
        "Because U7 (12 songs in common with you) and U9 (1 song in common with you) play it, "
        "and 50% of your plays are Pop."
    )


def test_reason_text_names_at_most_three_pieces_with_their_facts() -> None:
    with pytest.raises(ValueError, match="at most 3"):
        reason_text([NamedEvidence("played", f"S{i}", 1.0 - i / 10) for i in range(4)])
    # A genre or listener claim without the fact it states cannot be named.
    assert reason_text([NamedEvidence("genre_affinity", "Pop", 0.9)]) == NO_EVIDENCE
    assert reason_text([NamedEvidence("similar_user", "U1", 0.9)]) == NO_EVIDENCE


def test_choose_reason_does_not_repeat_the_previous_rank() -> None:
    """Issue 13: ranks 1-3 of U00003 in the demo read the same sentence word for word."""
    ev = [
        NamedEvidence("played", "A", 0.5),
        NamedEvidence("played", "B", 0.3),
        NamedEvidence("played", "C", 0.1),
        NamedEvidence("artist", "Nina", 0.05),
    ]
    first, text = choose_reason(ev)
    assert first == [0, 1, 2] and text == "Because you played “A”, “B” and “C”."
    again, other = choose_reason(ev, avoid=text)
    assert other != text and 0 in again and len(again) == 3
    assert other == "Because you played “A” and “B”, and it is by Nina."
    # Only one nameable piece: nothing else to say, the sentence stays.
    assert choose_reason(ev[:1], avoid="Because you played “A”.")[1] == "Because you played “A”."


@pytest.fixture(scope="module")
def linear_data() -> object:
    snap = random_snapshot(
        num_users=15, num_songs=40, num_artists=5, num_genres=4, plays_per_user=15, seed=3
    )
    return build_train_data(snap, np.ones(snap.num_plays, dtype=bool))


@pytest.mark.parametrize("model", [EASE(l2=5.0), ItemKNN(neighbours=10)], ids=["ease", "itemknn"])
def test_linear_contributions_are_the_score(model: object, linear_data: object) -> None:
    """score(u, i) = sum_j x_uj B_ji: the parts of every song add up to its score."""
    model.fit(linear_data)
    songs = np.arange(linear_data.num_songs)
    for u in (0, 4, 9):
        hist, parts = model.contributions(u, songs, linear_data)
        m = linear_data.matrix
        assert set(hist.tolist()) <= set(m.indices[m.indptr[u] : m.indptr[u + 1]].tolist())
        score = model.score(np.array([u]), linear_data)[0]
        known = score > -1e29
        np.testing.assert_allclose(parts.sum(axis=0)[known], score[known], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", [EASE(l2=5.0), ItemKNN(neighbours=10)], ids=["ease", "itemknn"])
def test_linear_models_are_explained_exactly_and_truly(model: object, linear_data: object) -> None:
    model.fit(linear_data)
    snap = linear_data.snapshot
    users = np.arange(snap.num_users)
    ex = recommend_and_explain(model, linear_data, users, k=5)
    assert ex.method == "exact"
    rows, affinity = writeback_rows(snap, ex)
    assert len(rows) == 5 * snap.num_users
    listening = genre_listening(snap)
    m = linear_data.matrix
    for row in rows:
        u = int(np.flatnonzero(snap.user_ids == row.user_id)[0])
        history = {str(snap.song_ids[j]) for j in m.indices[m.indptr[u] : m.indptr[u + 1]]}
        assert row.evidence and all(e.kind == "played" for e in row.evidence)
        assert {e.id for e in row.evidence} <= history
        assert sum(e.weight for e in row.evidence) == pytest.approx(1.0)
        assert 1 <= sum(e.named for e in row.evidence) <= 3
        # The exact parts: the strongest written piece is the largest x_uj B_ji.
        i = int(np.flatnonzero(snap.song_ids == row.song_id)[0])
        hist, parts = model.contributions(u, np.array([i]), linear_data)
        assert row.evidence[0].id == str(snap.song_ids[hist[int(np.argmax(parts[:, 0]))]])
    for uid, gid, share, plays in affinity:
        u = int(np.flatnonzero(snap.user_ids == uid)[0])
        g = int(np.flatnonzero(snap.genre_ids == gid)[0])
        assert share == pytest.approx(listening.share(u, g)) and plays == listening.plays[u, g]
    sim = similar_songs(model, linear_data, k=3)
    assert sim and all(w > 0 for _, _, w in sim)


def test_gradient_evidence_that_is_not_true_is_not_written(setup: tuple) -> None:
    """Only claimable genres, and listeners sharing songs with the user, survive write-back."""
    model, data = setup
    snap = data.snapshot
    users = np.arange(snap.num_users)
    songs = np.array([[_unplayed(data, u)] for u in users])
    expl = GradientExplainer(model, data.hetero).explain(users, songs, top=50)
    ex = Explained(users=users, songs=songs, scores=np.zeros(songs.shape), explanations=expl)
    rows, affinity = writeback_rows(snap, ex)
    listening = genre_listening(snap)
    m = (data.matrix > 0).astype(np.int64).tocsr()
    common = (m @ m.T).toarray()
    for row, u in zip(rows, users, strict=True):
        for e in row.evidence:
            if e.kind == "genre_affinity":
                g = int(np.flatnonzero(snap.genre_ids == e.id)[0])
                assert listening.claimable(int(u), g)
                assert e.share_of_plays == pytest.approx(listening.share(int(u), g))
            if e.kind == "similar_user":
                v = int(np.flatnonzero(snap.user_ids == e.id)[0])
                assert v != u and e.songs_in_common == common[u, v] > 0
    kinds = {a.kind for pe in expl for p in pe for a in p.evidence}
    assert "genre_affinity" in kinds  # the filter had something to filter
    assert {uid for uid, *_ in affinity} == {str(snap.user_ids[u]) for u in users}


def test_models_without_an_explanation_are_refused() -> None:
    from spotify_engine.errors import ModelError

    pop = Popularity()
    assert not explainable(pop) and explainable(EASE()) and explainable(ItemKNN())
    snap = random_snapshot(num_users=4, num_songs=10)
    data = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    pop.fit(data)
    with pytest.raises(ModelError, match="cannot be explained"):
        recommend_and_explain(pop, data, np.arange(4), k=2)


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
