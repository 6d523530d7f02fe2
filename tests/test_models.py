"""Unit tests of the graph models in ``gnn.users._models`` on tiny hand-built graphs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch_geometric.nn.models import LightGCN

from gnn.graph._data import EDGE_TYPES, build_train_data, random_snapshot
from gnn.users._models import (
    ALL_EDGE_TYPES,
    LISTENED,
    BasicGAT,
    EnhancedGAT,
    LightGCNModel,
    bipartite_edge_index,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    """Random plays plus three playlists, so that every edge type has edges."""
    snap = random_snapshot(
        num_users=12, num_songs=30, num_artists=4, num_genres=3, plays_per_user=10, seed=1
    )
    snap = dataclasses.replace(
        snap,
        playlist_ids=np.array(["P0", "P1", "P2"], dtype=object),
        playlist_song=np.vstack([np.repeat(np.arange(3), 4), np.arange(12)]).astype(np.int64),
        playlist_song_pos=np.tile(np.arange(4), 3).astype(np.int64),
    )
    return build_train_data(snap, np.ones(snap.num_plays, dtype=bool)).hetero


def make(kind: str, data, **kwargs):
    torch.manual_seed(0)
    if kind == "lightgcn":
        return LightGCNModel(data["user"].num_nodes, data["song"].num_nodes, **kwargs)
    if kind == "basic":
        return BasicGAT.from_data(data, **kwargs)
    return EnhancedGAT.from_data(data, **kwargs)


KINDS = ["lightgcn", "basic", "enhanced"]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_shapes(kind, data):
    model = make(kind, data, embedding_dim=8)
    emb = model.embed(data)
    assert emb["user"].shape == (12, 8)
    assert emb["song"].shape == (30, 8)
    pairs = torch.tensor([[0, 1, 11], [0, 29, 5]])
    out = model(data, pairs)
    assert out.shape == (3,)
    assert torch.isfinite(out).all()
    assert model.score_all(data, emb, torch.tensor([2, 3])).shape == (2, 30)
    assert model.id_embedding("song", torch.tensor([0, 29])).shape == (2, 8)


def test_enhanced_embeds_every_node_type(data):
    emb = make("enhanced", data, embedding_dim=8).embed(data)
    for nt in ("user", "song", "artist", "genre", "playlist"):
        assert emb[nt].shape == (data[nt].num_nodes, 8)


@pytest.mark.parametrize("kind", KINDS)
def test_reset_parameters_changes_weights(kind, data):
    model = make(kind, data, embedding_dim=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    model.reset_parameters()
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    emb_keys = [k for k in before if "embedding" in k]
    assert emb_keys and all(k in changed for k in emb_keys)


@pytest.mark.parametrize("kind", ["basic", "enhanced"])
def test_reset_parameters_zeroes_song_bias(kind, data):
    model = make(kind, data, embedding_dim=8)
    with torch.no_grad():
        model.song_bias.weight.fill_(3.0)
    model.reset_parameters()
    assert torch.count_nonzero(model.song_bias.weight) == 0


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("lightgcn", "LightGCNModel(users=12, songs=30, dim=8, layers=2)"),
        ("basic", "BasicGAT(users=12, songs=30, dim=8, heads=2, layers=2)"),
        ("enhanced", "EnhancedGAT(artist=4, genre=3, playlist=3, song=30, user=12, dim=8"),
    ],
)
def test_repr(kind, expected, data):
    assert repr(make(kind, data, embedding_dim=8)).startswith(expected)


def test_enhanced_keeps_attention_for_every_layer_and_edge_type(data):
    model = make("enhanced", data, embedding_dim=8, heads=2, num_layers=3)
    model.eval()
    model.embed(data)
    assert len(model.last_attention) == 3
    for layer in model.last_attention:
        assert set(layer) == set(ALL_EDGE_TYPES)
        for et, (edge_index, alpha) in layer.items():
            num_edges = data[et].edge_index.size(1)
            assert num_edges > 0, et
            assert torch.equal(edge_index, data[et].edge_index)
            assert alpha.shape == (num_edges, 2)
            assert not alpha.requires_grad
            # softmax over the incoming edges of each destination node, per head
            dst = edge_index[1]
            sums = torch.zeros(data[et[2]].num_nodes, 2).index_add_(0, dst, alpha)
            has_in = torch.bincount(dst, minlength=data[et[2]].num_nodes) > 0
            assert torch.allclose(sums[has_in], torch.ones_like(sums[has_in]), atol=1e-5)
            assert (alpha >= 0).all()


def test_enhanced_edge_types_default_to_all_with_reverses():
    assert len(ALL_EDGE_TYPES) == 2 * len(EDGE_TYPES)
    for et, rev in EDGE_TYPES.items():
        assert et in ALL_EDGE_TYPES and rev in ALL_EDGE_TYPES


def test_enhanced_runs_without_features_or_some_edge_types(data):
    sub = data.edge_type_subgraph([LISTENED, EDGE_TYPES[LISTENED]])
    for nt in sub.node_types:
        del sub[nt].x
    model = EnhancedGAT({"user": 12, "song": 30}, embedding_dim=8)
    emb = model.embed(sub)
    assert emb["user"].shape == (12, 8)
    assert set(model.last_attention[0]) == {LISTENED, EDGE_TYPES[LISTENED]}


@pytest.mark.parametrize("kind", KINDS)
def test_explicit_global_ids_give_the_same_embeddings(kind, data):
    """A subgraph names its nodes through ``n_id``; the identity mapping changes nothing."""
    model = make(kind, data, embedding_dim=8).eval()
    with torch.no_grad():
        full = model.embed(data)
        relabelled = data.clone()
        for nt in relabelled.node_types:
            relabelled[nt].n_id = torch.arange(relabelled[nt].num_nodes)
        sub = model.embed(relabelled)
    for nt in ("user", "song"):
        assert torch.allclose(full[nt], sub[nt], atol=1e-6)


def test_lightgcn_matches_pyg_propagation(data):
    """The cached sparse propagation equals PyG's LightGCN on the same weights."""
    model = make("lightgcn", data, embedding_dim=8)
    ref = LightGCN(42, 8, 2)
    ref.embedding.weight.data.copy_(model.lightgcn.embedding.weight.data)
    edge_index, _, _ = bipartite_edge_index(data)
    with torch.no_grad():
        expected = ref.get_embedding(edge_index)
        emb = model.embed(data)
    assert torch.allclose(torch.cat([emb["user"], emb["song"]]), expected, atol=1e-5)


@pytest.mark.parametrize("cls", [BasicGAT, EnhancedGAT])
def test_heads_must_divide_dim(cls):
    with pytest.raises(ValueError, match="divisible by heads"):
        if cls is BasicGAT:
            BasicGAT(3, 4, embedding_dim=10, heads=3)
        else:
            EnhancedGAT({"user": 3, "song": 4}, embedding_dim=10, heads=3)


def test_wrong_graph_size_is_named(data):
    model = BasicGAT(5, 30, 6, data["song"].x.size(1), embedding_dim=8)
    with pytest.raises(ValueError, match="user: graph has 12 nodes"):
        model.embed(data)


def test_basic_gat_is_small_at_default_size():
    """Well under the reference's ~200k-300k parameters for 1,000 users / 5,000 songs."""
    model = BasicGAT(1000, 5000, user_channels=23, song_channels=26)
    count = sum(p.numel() for p in model.parameters())
    assert count < 150_000
