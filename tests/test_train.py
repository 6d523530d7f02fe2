"""Training and the graph recommenders (``gnn.users._train``) on tiny graphs with a known answer."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from gnn.graph._data import build_train_data, relevant_items, temporal_split
from gnn.graph._snapshot import GraphSnapshot
from gnn.users._models import LISTENED, EnhancedGAT, LightGCNModel
from gnn.users._recommenders import (
    BasicGATRecommender,
    EnhancedGATRecommender,
    GNNConfig,
    LightGCNRecommender,
)
from gnn.users._sampling import _History, _TorchNeighborSampler
from gnn.users._train import AdvancedTrainer, SimpleTrainer
from spotify_engine.errors import ModelError, NotFittedError, TrainingDiverged

torch.set_num_threads(1)  # tiny graphs: more threads only add OpenMP overhead


def _snapshot(
    play_user: np.ndarray,
    play_song: np.ndarray,
    song_genre: np.ndarray,
    song_artist: np.ndarray,
    artist_genre: np.ndarray,
    num_users: int,
    num_genres: int,
    playlist_song: np.ndarray | None = None,
    play_ts: np.ndarray | None = None,
    seed: int = 0,
) -> GraphSnapshot:
    rng = np.random.default_rng(seed)
    num_songs, num_artists = len(song_genre), len(artist_genre)
    num_plays = len(play_user)
    if playlist_song is None:
        playlist_song = np.zeros((2, 0), dtype=np.int64)
    num_playlists = int(playlist_song[0].max()) + 1 if playlist_song.size else 0
    if play_ts is None:
        play_ts = np.arange(num_plays, dtype=np.int64) * 1000
    return GraphSnapshot(
        user_ids=np.array([f"U{i}" for i in range(num_users)], dtype=object),
        song_ids=np.array([f"S{i}" for i in range(num_songs)], dtype=object),
        artist_ids=np.array([f"A{i}" for i in range(num_artists)], dtype=object),
        genre_ids=np.array([f"G{i}" for i in range(num_genres)], dtype=object),
        playlist_ids=np.array([f"P{i}" for i in range(num_playlists)], dtype=object),
        play_user=np.asarray(play_user, dtype=np.int64),
        play_song=np.asarray(play_song, dtype=np.int64),
        play_ts=np.asarray(play_ts, dtype=np.int64),
        play_ms=np.full(num_plays, 180_000, dtype=np.int64),
        play_session=np.asarray(play_user, dtype=np.int64),
        play_skipped=rng.random(num_plays) < 0.1,
        song_artist=np.vstack([np.arange(num_songs), song_artist]).astype(np.int64),
        song_genre=np.vstack([np.arange(num_songs), song_genre]).astype(np.int64),
        song_genre_weight=np.ones(num_songs, dtype=np.float32),
        artist_genre=np.vstack([np.arange(num_artists), artist_genre]).astype(np.int64),
        artist_genre_weight=np.ones(num_artists, dtype=np.float32),
        playlist_song=playlist_song.astype(np.int64),
        playlist_song_pos=np.zeros(playlist_song.shape[1], dtype=np.int64),
        song_features=rng.normal(size=(num_songs, 2)).astype(np.float32),
    )


def communities(seed: int = 0, per_user: int = 12) -> GraphSnapshot:
    """Two disjoint taste communities with a known right answer.

    Users 0-9 play only songs 0-24 (genre 0, artists 0-4); users 10-19 only songs 25-49
    (genre 1, artists 5-9). Each user plays ``per_user`` of the 25 songs of their community,
    so a good model fills a user's top-5 with unheard songs of the same community.
    """
    rng = np.random.default_rng(seed)
    users, songs = [], []
    for u in range(20):
        lo = 0 if u < 10 else 25
        users += [u] * per_user
        songs += list(rng.choice(np.arange(lo, lo + 25), per_user, replace=False))
    song_ids = np.arange(50)
    return _snapshot(
        np.array(users),
        np.array(songs),
        song_genre=(song_ids >= 25).astype(np.int64),
        song_artist=song_ids // 5,
        artist_genre=(np.arange(10) >= 5).astype(np.int64),
        num_users=20,
        num_genres=2,
        playlist_song=np.vstack([np.repeat([0, 1], 5), np.r_[0:5, 25:30]]),
        seed=seed,
    )


@pytest.fixture(scope="module")
def view():
    snap = communities()
    return build_train_data(snap, np.ones(snap.num_plays, dtype=bool))


@pytest.fixture(scope="module")
def split_views():
    """Community graph with a temporal split: (train view, relevant val songs)."""
    snap = communities(per_user=16)
    split = temporal_split(snap, test_frac=0.0, val_frac=0.25)
    return build_train_data(snap, split.train), relevant_items(snap, split, "val")


FAST = {"batch_size": 64, "epochs": 25, "num_threads": 1}
RECOMMENDERS = [LightGCNRecommender, BasicGATRecommender, EnhancedGATRecommender]


def own_community_share(ids: np.ndarray) -> float:
    users_first = (np.arange(len(ids)) < 10)[:, None]
    return float(((ids < 25) == users_first)[ids >= 0].mean())


@pytest.mark.parametrize("cls", RECOMMENDERS)
def test_recommends_songs_of_the_users_own_community(cls, view):
    rec = cls(**FAST)
    info = rec.fit(view)
    ids, scores = rec.recommend(np.arange(20), 5, view)
    assert ids.shape == scores.shape == (20, 5)
    assert (ids >= 0).all()
    assert own_community_share(ids) >= 0.9
    heard = view.matrix[np.arange(20)[:, None], ids].toarray()
    assert heard.sum() == 0, "listened songs must be excluded"
    assert info["history"]["loss"][-1] < info["history"]["loss"][0]


@pytest.mark.parametrize("cls", RECOMMENDERS)
def test_validation_fit_reaches_known_answer(cls, split_views):
    train, relevant = split_views
    rec = cls(**{**FAST, "epochs": 15})
    info = rec.fit(train, val=(train, relevant))
    json.dumps(info)  # fit information is JSON-serialisable
    assert info["best_epoch"] >= 1
    assert set(info["history"]) >= {"epoch", "loss", "val_ndcg", "val_recall", "lr", "seconds"}
    ids, _ = rec.recommend(np.arange(20), 5, train)
    assert own_community_share(ids) >= 0.9


def test_loss_decreases(view):
    torch.manual_seed(0)
    model = EnhancedGAT.from_data(view.hetero, embedding_dim=16)
    trainer = SimpleTrainer(model, view, lr=1e-2, epochs=8, batch_size=64)
    losses = [trainer.train_epoch() for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0]
    assert all(np.isfinite(losses))


def test_same_seed_same_result(view):
    def run():
        rec = BasicGATRecommender(batch_size=64, epochs=3, seed=7, hard_negatives=3)
        info = rec.fit(view)
        return info["history"]["loss"], rec.score(np.arange(20), view)

    loss_a, scores_a = run()
    loss_b, scores_b = run()
    assert loss_a == loss_b
    np.testing.assert_array_equal(scores_a, scores_b)
    loss_c = BasicGATRecommender(batch_size=64, epochs=3, seed=8).fit(view)["history"]["loss"]
    assert loss_c != loss_a


def test_early_stopping_on_a_plateau(split_views, tmp_path):
    """With a learning rate too small to change any ranking, validation NDCG is flat: stop."""
    train, relevant = split_views
    torch.manual_seed(0)
    model = LightGCNModel(train.num_users, train.num_songs, embedding_dim=8)
    path = tmp_path / "best.pt"
    trainer = AdvancedTrainer(
        model,
        train,
        (train, relevant),
        lr=1e-6,
        epochs=30,
        batch_size=64,
        patience=5,
        lr_patience=1,
        checkpoint_path=path,
    )
    history = trainer.fit()
    assert trainer.stopped_early
    assert trainer.best_epoch == 1
    assert len(history) == 6  # the best epoch, then ``patience`` epochs without a gain
    assert history[-1]["lr"] < history[0]["lr"]  # ReduceLROnPlateau lowered it
    state = torch.load(path)
    assert torch.equal(
        state["lightgcn.embedding.weight"], trainer.best_state["lightgcn.embedding.weight"]
    )


def test_best_checkpoint_is_restored(split_views):
    train, relevant = split_views
    torch.manual_seed(0)
    model = LightGCNModel(train.num_users, train.num_songs, embedding_dim=8)
    trainer = AdvancedTrainer(model, train, (train, relevant), lr=5e-2, epochs=6, batch_size=64)
    trainer.fit()
    again = trainer.evaluate(train, relevant)["ndcg"]
    assert again == pytest.approx(trainer.best_score)


def test_nan_raises_typed_error_naming_the_epoch(view):
    model = LightGCNModel(view.num_users, view.num_songs, embedding_dim=8)
    trainer = SimpleTrainer(model, view, batch_size=64)
    trainer.train_epoch()
    with torch.no_grad():
        model.lightgcn.embedding.weight[3] = float("nan")
    with pytest.raises(TrainingDiverged, match="epoch 2") as err:
        trainer.train_epoch()
    assert isinstance(err.value, RuntimeError)
    assert isinstance(err.value, ModelError)


def test_user_task_gat_ignores_playlists(view):
    """Playlists cannot be placed on a user's timeline, so the user-task model leaves them out:
    its scores are the same with the playlists' edges removed from the graph."""
    rec = EnhancedGATRecommender(batch_size=64, epochs=2, num_threads=1)
    rec.fit(view)
    assert LISTENED in rec.model.edge_types
    assert not [et for et in rec.model.edge_types if "playlist" in (et[0], et[2])]
    without = copy.copy(view)
    without.hetero = copy.copy(view.hetero)
    for et in view.hetero.edge_types:
        if "playlist" in (et[0], et[2]):
            without.hetero[et].edge_index = torch.zeros(2, 0, dtype=torch.long)
    assert view.hetero[("playlist", "contains", "song")].edge_index.size(1) > 0
    np.testing.assert_allclose(
        rec.score(np.arange(20), view), rec.score(np.arange(20), without), rtol=1e-5
    )


def test_nan_parameters_outside_the_loss_are_caught(view):
    """A NaN weight that does not reach this epoch's losses still fails the epoch."""
    model = EnhancedGAT.from_data(view.hetero, embedding_dim=8)
    trainer = SimpleTrainer(model, view, batch_size=64, lr=1e-3)
    with torch.no_grad():
        model.encoders["playlist"].embedding.weight.fill_(float("nan"))
        model.convs[-1].convs[("song", "in_playlist", "playlist")].att.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        trainer.train_epoch()


@pytest.mark.parametrize("cls", [LightGCNRecommender, EnhancedGATRecommender])
def test_link_neighbor_loader_path_trains(cls, view):
    rec = cls(batch_size=32, epochs=2, neighbor_loader=True, num_neighbors=(4, 4))
    info = rec.fit(view)
    assert len(info["history"]["loss"]) == 2
    assert all(np.isfinite(info["history"]["loss"]))
    assert rec.score(np.arange(3), view).shape == (3, 50)


def test_torch_neighbor_sampler_samples_real_edges_within_fanout(view):
    data = view.hetero
    hops = {et: [3, 2] for et in data.edge_types}
    sampler = _TorchNeighborSampler(data, num_neighbors=hops)
    seed = {"user": torch.tensor([0, 15]), "song": torch.tensor([7])}
    out = sampler._sample(seed)
    assert torch.equal(out.node["user"][:2], seed["user"])
    assert torch.equal(out.node["song"][:1], seed["song"])
    for nt, nodes in out.node.items():
        assert nodes.unique().numel() == nodes.numel(), nt
    for et in data.edge_types:
        src, _, dst = et
        g_src = out.node[src][out.row[et]]
        g_dst = out.node[dst][out.col[et]]
        real = set(map(tuple, data[et].edge_index.t().tolist()))
        assert set(zip(g_src.tolist(), g_dst.tolist(), strict=True)) <= real, et
        # the reported edge ids point at the same edges in the original order
        perm = sampler.perm[et]
        eid = out.edge[et] if perm is None else perm[out.edge[et]]
        assert torch.equal(data[et].edge_index[0, eid], g_src)
        if out.col[et].numel():
            assert torch.bincount(out.col[et]).max() <= 3


def test_negatives_avoid_the_training_history():
    users = torch.tensor([0, 0, 0, 1])
    songs = torch.tensor([0, 1, 2, 3])
    history = _History(users, songs, num_songs=6)
    neg = history.sample(torch.zeros(2000, dtype=torch.long), 2, torch.Generator().manual_seed(0))
    assert neg.shape == (2000, 2)
    assert not history.contains(torch.zeros_like(neg), neg).any()
    assert set(neg.unique().tolist()) == {3, 4, 5}
    counts = torch.bincount(neg.view(-1), minlength=6)[3:].float()
    assert (counts / counts.sum() - 1 / 3).abs().max() < 0.05  # uniform over unheard songs


def test_negatives_for_a_user_who_heard_almost_everything():
    history = _History(torch.zeros(99, dtype=torch.long), torch.arange(99), num_songs=100)
    neg = history.sample(torch.zeros(50, dtype=torch.long), 3, torch.Generator().manual_seed(1))
    assert (neg == 99).all()


def test_hard_negatives_and_edge_dropout_run(view):
    rec = EnhancedGATRecommender(
        batch_size=64, epochs=2, hard_negatives=4, message_edge_frac=0.5, embedding_dim=8
    )
    info = rec.fit(view)
    assert all(np.isfinite(info["history"]["loss"]))


def test_score_passes_messages_over_the_observed_view():
    """Plays added to the observed view change a user's scores without refitting."""
    snap = communities(per_user=16)
    split = temporal_split(snap, test_frac=0.25, val_frac=0.0)
    train = build_train_data(snap, split.train)
    rec = EnhancedGATRecommender(batch_size=64, epochs=2, embedding_dim=8)
    rec.fit(train)
    both = build_train_data(snap, np.ones(snap.num_plays, dtype=bool))
    assert not np.allclose(rec.score(np.arange(20), train), rec.score(np.arange(20), both))


@pytest.mark.parametrize("cls", [LightGCNRecommender, EnhancedGATRecommender])
def test_softmax_loss_reaches_known_answer(cls, split_views):
    """Issue 4: the multinomial (softmax over all songs) objective learns the communities."""
    train, relevant = split_views
    rec = cls(loss="softmax", batch_size=8, epochs=15, lr=3e-2, num_threads=1)
    info = rec.fit(train, val=(train, relevant))
    assert info["history"]["loss"][-1] < info["history"]["loss"][0]
    ids, _ = rec.recommend(np.arange(20), 5, train)
    assert own_community_share(ids) >= 0.9


def test_softmax_targets_are_held_out_of_the_message_graph(view):
    model = EnhancedGAT.from_data(view.hetero, embedding_dim=8)
    trainer = SimpleTrainer(model, view, loss="softmax", batch_size=4, message_edge_frac=0.5)
    users = torch.tensor([0, 3, 12, 17])
    data, (t_users, t_songs), (k_users, k_songs) = trainer._softmax_step_graph(users)
    assert t_users.numel() > 0
    assert set(t_users.tolist()) <= set(users.tolist())
    seen = set(map(tuple, data[LISTENED].edge_index.t().tolist()))
    targets = set(zip(t_users.tolist(), t_songs.tolist(), strict=True))
    assert not targets & seen, "a target edge must not be a message edge of its own step"
    batch_edges = {
        (u, s) for u, s in zip(*view.matrix.nonzero(), strict=True) if u in {0, 3, 12, 17}
    }
    assert batch_edges == targets | (batch_edges & seen)  # every batch edge: input or target
    assert set(zip(k_users.tolist(), k_songs.tolist(), strict=True)) == batch_edges - targets

    everything = SimpleTrainer(model, view, loss="softmax", exclude_batch_edges=False)
    _, (t_users, _), (k_users, _) = everything._softmax_step_graph(users)
    assert k_users.numel() == 0
    assert t_users.numel() == len(batch_edges)


def test_not_fitted_and_bad_options():
    with pytest.raises(NotFittedError):
        EnhancedGATRecommender().score(np.arange(2), None)
    with pytest.raises(ValueError, match="unknown EnhancedGATRecommender option"):
        EnhancedGATRecommender(learning_rate=0.1)
    with pytest.raises(ValueError, match="message_edge_frac"):
        SimpleTrainer(LightGCNModel(20, 50), build_view_small(), message_edge_frac=0)
    with pytest.raises(ValueError, match="loss must be one of bpr, softmax"):
        SimpleTrainer(LightGCNModel(20, 50), build_view_small(), loss="mse")
    with pytest.raises(ValueError, match="neighbor_loader"):
        SimpleTrainer(
            LightGCNModel(20, 50), build_view_small(), loss="softmax", neighbor_loader=True
        )


def build_view_small():
    snap = communities()
    return build_train_data(snap, np.ones(snap.num_plays, dtype=bool))


def test_config_defaults_are_in_range():
    for cls in RECOMMENDERS:
        cfg = cls.default_config()
        assert isinstance(cfg, GNNConfig)
        assert 5e-3 <= cfg.lr <= 1e-2
        assert cfg.epochs <= 50
        assert 2048 <= cfg.batch_size <= 8192 or cfg.batch_size == 16384
    assert EnhancedGATRecommender().config.embedding_dim == 64


def test_listened_edges_keep_reverse_order(view):
    """Edge dropout keeps the same listened edges in both directions (relies on this)."""
    fwd = view.hetero[LISTENED].edge_index
    rev = view.hetero[("song", "listened_by", "user")].edge_index
    assert torch.equal(fwd.flip(0), rev)
