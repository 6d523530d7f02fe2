"""Issue 14 item 1, EnhancedGAT fold-in without a full forward pass (``gnn.users.UserEncoder``):
a user encoded from their own edges over the cached graph equals the full model's output for
every user of that graph; for a new user, the propagation term is exactly that of the graph
rebuilt with them; a new user's fitted ID embedding explains their plays better than the mean
row; evidence names only the user's own plays and genres. Small random graphs, no Neo4j."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn.graph._data import build_train_data, random_snapshot
from gnn.users import (
    USER_TASK_EDGE_TYPES,
    EnhancedGAT,
    EnhancedGATRecommender,
    UserEncoder,
    fold_in,
)
from gnn.users._foldin import _user_rows, with_user_plays


def _world(*, features: bool = True, layer_scale: float = 1.0, seed: int = 0):  # noqa: ANN202
    snap = random_snapshot(num_users=25, num_songs=60, num_artists=6, num_genres=4, seed=seed)
    rng = np.random.default_rng(seed)
    snap.play_skipped[:] = rng.random(snap.num_plays) < 0.2
    view = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    torch.manual_seed(seed)
    model = EnhancedGAT.from_data(
        view.hetero,
        use_features=features,
        embedding_dim=16,
        heads=2,
        layer_scale=layer_scale,
        edge_types=[et for et in USER_TASK_EDGE_TYPES if et in view.hetero.edge_types],
    )
    with torch.no_grad():  # a random but non-trivial model: biases and ID rows spread out
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
        for scale in model.scales:
            scale.mul_(layer_scale)
    model.eval()
    rec = EnhancedGATRecommender(embedding_dim=16)
    rec.model = model
    return snap, view, model, rec


def _plays(snap, view, u: int) -> tuple[dict[int, int], dict[int, int]]:  # noqa: ANN001
    row = view.matrix[u]
    plays = {int(i): int(c) for i, c in zip(row.indices, row.data, strict=True)}
    sel = (snap.play_user == u) & snap.play_skipped.astype(bool)
    songs, counts = np.unique(snap.play_song[sel], return_counts=True)
    return plays, {int(s): int(c) for s, c in zip(songs, counts, strict=True)}


@pytest.mark.parametrize("seed", [0, 1])
def test_every_user_of_the_graph_is_encoded_exactly(seed: int) -> None:
    snap, view, model, _ = _world(seed=seed)
    enc = UserEncoder(model, view)
    with torch.no_grad():
        want = model.embed(view.hetero)["user"]
        for u in range(snap.num_users):
            plays, skips = _plays(snap, view, u)
            edges = enc.edges(plays, skips, u)
            assert torch.allclose(edges.x, view.hetero["user"].x[u], atol=1e-5)
            got = enc.encode(edges, enc.id_embedding(u))
            assert torch.allclose(got, want[u], atol=1e-5), u


def test_a_new_users_propagation_is_that_of_the_rebuilt_graph() -> None:
    """With the attention stream off (LayerScale 0) and no node features, a user's embedding
    is the readout's propagation of ID embeddings: the ego encoding of a new user must equal
    their row in the graph rebuilt with their plays (two layers: the correction of their songs'
    degrees and propagated states is exact). The songs' own embeddings do move in the rebuilt
    graph (degrees two hops away), which the ego encoding leaves as cached."""
    snap, view, model, _ = _world(features=False, layer_scale=0.0)
    plays = {3: 2, 17: 1, 40: 5}
    now, u = with_user_plays(snap, "NEW", plays)
    rebuilt = build_train_data(now, np.ones(now.num_plays, dtype=bool))
    enc = UserEncoder(model, view)
    with torch.no_grad(), _user_rows(model, now.num_users):
        want = model.embed(rebuilt.hetero)["user"][u]
        got = enc.encode(enc.edges(plays), enc.id_embedding(None))
    assert torch.allclose(got, want, atol=1e-6)


def test_known_user_fold_in_equals_the_full_recompute_when_plays_are_unchanged() -> None:
    snap, view, _, rec = _world(seed=3)
    for u in (0, 7, 19):
        plays, skips = _plays(snap, view, u)
        ids = {str(snap.song_ids[i]): n for i, n in plays.items()}
        sk = {str(snap.song_ids[i]): n for i, n in skips.items()}
        kw = {"explain": False, "observed": view, "skips": sk}
        ego = fold_in(rec, snap, str(snap.user_ids[u]), ids, 10, **kw)
        full = fold_in(rec, snap, str(snap.user_ids[u]), ids, 10, recompute="full", **kw)
        assert [r.song_id for r in ego.rows] == [r.song_id for r in full.rows]
        assert [r.score for r in ego.rows] == pytest.approx([r.score for r in full.rows], abs=1e-5)


def test_a_fitted_id_embedding_explains_the_plays_better_than_the_mean_row() -> None:
    snap, view, model, _ = _world(seed=2)
    enc = UserEncoder(model, view)
    edges = enc.edges({5: 3, 6: 1, 30: 2})
    counts = torch.tensor([3.0, 1.0, 2.0])

    def loss(e: torch.Tensor) -> float:
        with torch.no_grad():
            logp = torch.log_softmax(enc.scores(enc.encode(edges, e)), 0)[edges.songs]
        return float(-(counts / counts.sum() * logp).sum())

    fitted = enc.fit_id_embedding(edges)
    assert loss(fitted) < loss(enc.id_embedding(None)) - 0.1
    assert not torch.equal(fitted, enc.id_embedding(None))


def test_new_user_evidence_names_only_their_own_plays_and_genres() -> None:
    snap, view, _, rec = _world(seed=4)
    played = {str(snap.song_ids[i]): 2 for i in (1, 2, 11)}
    genres = {
        str(snap.genre_ids[g]) for g in snap.song_genre[1][np.isin(snap.song_genre[0], [1, 2, 11])]
    }
    got = fold_in(rec, snap, "NEW", played, 5, observed=view)
    assert len(got.rows) == 5
    assert not {r.song_id for r in got.rows} & set(played)
    assert any(r.evidence for r in got.rows)
    for row in got.rows:
        for e in row.evidence:
            assert e.kind in ("played", "genre_affinity")
            assert e.id in (played if e.kind == "played" else genres)
        if row.evidence:
            assert row.reason
