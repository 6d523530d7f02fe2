"""Training sampled from Neo4j through the remote-backend stores (issue 15, item 7): a worker
takes steps on subgraphs it asks Neo4j for, hop by hop, and never fetches an edge list."""

from __future__ import annotations

from pathlib import Path

import neo4j
import numpy as np
import pytest
import torch

from gnn.graph import EDGE_TYPES, export_snapshot, neo4j_stores
from gnn.users import LightGCNModel, Neo4jSampledTrainer
from ingest import Loader, SyntheticConfig, generate
from spotify_engine.settings import Settings

LISTENED = ("user", "listened", "song")

pytestmark = pytest.mark.neo4j


@pytest.fixture()
def small(graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path) -> neo4j.Driver:
    generate(
        SyntheticConfig(users=60, songs=300, artists=30, days=10, mean_plays_per_user=60, seed=9),
        tmp_path / "data",
    )
    Loader(graph, neo4j_settings.neo4j_database).load(tmp_path / "data", source="synthetic")
    return graph


def test_sampled_steps_from_neo4j_train_without_holding_the_graph(
    small: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    snap = export_snapshot(small, db)  # the test's own view, to check what was sampled
    truth = set(zip(snap.play_user.tolist(), snap.play_song.tolist(), strict=True))
    total_edges = len(truth)
    _, store = neo4j_stores(small, db)

    # one hop: at most k songs per user, every one of them a real LISTENED edge
    users = np.arange(10)
    songs, owners = store.sample_neighbors(EDGE_TYPES[LISTENED], users, 3)
    assert set(owners.tolist()) <= set(users.tolist())
    assert np.bincount(owners, minlength=10).max() <= 3
    assert all((u, s) in truth for u, s in zip(owners.tolist(), songs.tolist(), strict=True))
    listeners, of = store.sample_neighbors(LISTENED, np.unique(songs), 2)
    assert all((u, s) in truth for u, s in zip(listeners.tolist(), of.tolist(), strict=True))
    with pytest.raises(KeyError, match="no sampling"):
        store.sample_neighbors(("song", "by", "artist"), users, 2)

    torch.manual_seed(0)
    model = LightGCNModel(snap.num_users, snap.num_songs, embedding_dim=16)
    trainer = Neo4jSampledTrainer(model, store, batch_users=32, fanout=(8, 4), lr=0.05)

    def auc() -> float:
        """Share of (listened, random) song pairs the model orders right, over the export."""
        model.eval()
        with torch.no_grad():
            emb = model.embed(_full(snap))
        rng = np.random.default_rng(1)
        u = torch.as_tensor(snap.play_user)
        pos = (emb["user"][u] * emb["song"][torch.as_tensor(snap.play_song)]).sum(1)
        neg_songs = torch.as_tensor(rng.integers(0, snap.num_songs, snap.num_plays))
        neg = (emb["user"][u] * emb["song"][neg_songs]).sum(1)
        return float((pos > neg).float().mean())

    before = auc()
    data, u, p, n = trainer.sample()
    held = set(zip(data["user"].n_id[u].tolist(), data["song"].n_id[p].tolist(), strict=True))
    ei = data[LISTENED].edge_index
    message = set(
        zip(data["user"].n_id[ei[0]].tolist(), data["song"].n_id[ei[1]].tolist(), strict=True)
    )
    assert held <= truth and message <= truth
    assert not held & message  # positives are held out of the message graph
    for _ in range(40):
        trainer.step()
    assert store.cached == []  # no edge list was ever fetched
    assert max(h["edges"] for h in trainer.history) < total_edges
    losses = [h["loss"] for h in trainer.history]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert auc() > before + 0.1, (before, auc())


def _full(snap):
    from torch_geometric.data import HeteroData

    pairs = np.unique(np.vstack([snap.play_user, snap.play_song]), axis=1)
    data = HeteroData()
    data["user"].num_nodes = snap.num_users
    data["song"].num_nodes = snap.num_songs
    data[LISTENED].edge_index = torch.as_tensor(pairs, dtype=torch.long)
    return data
