"""The synthetic generator: tables by contract, determinism, integrity, and planted taste.

The taste tests are the point: the reference generator's hidden preferences did not beat
popularity, so here the oracle built from ``truth.json`` must beat a popularity ranking on a
temporal hold-out, and users' most played genres must be the genres planted for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ingest._synthetic import (
    GENRE_NAMES,
    SKIP_MS,
    USER_TYPES,
    SyntheticConfig,
    Truth,
    generate,
    load_truth,
    oracle_scores,
)
from ingest._tables import AUDIO_FEATURES, SCHEMAS

SMALL = SyntheticConfig(users=100, songs=800, artists=80, seed=7)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic")
    generate(SMALL, path)
    return path


@pytest.fixture(scope="module")
def tables(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pq.read_table(out / f"{name}.parquet").to_pandas() for name in SCHEMAS}


@pytest.fixture(scope="module")
def truth(out: Path) -> Truth:
    return load_truth(out)


def _ndcg_at_10(scores: np.ndarray, seen: set[int], relevant: set[int]) -> float:
    s = scores.astype(np.float64).copy()
    s[list(seen)] = -np.inf
    top = np.argsort(-s, kind="stable")[:10]
    gains = np.array([t in relevant for t in top], dtype=np.float64)
    discount = 1.0 / np.log2(np.arange(2, 12))
    return float((gains * discount).sum() / discount[: min(10, len(relevant))].sum())


def _genre_plays(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Plays per (user, genre), each play split over its song's genres by weight."""
    m = tables["plays"].merge(tables["song_genres"], on="song_id")
    return m.groupby(["user_id", "genre_id"]).weight.sum().reset_index()


# --------------------------------------------------------------------------- contract


def test_every_table_is_written_with_its_schema(out: Path) -> None:
    report = json.loads((out / "report.json").read_text())
    assert (out / "quarantine.jsonl").exists()
    for name, schema in SCHEMAS.items():
        table = pq.read_table(out / f"{name}.parquet")
        assert table.schema.equals(schema, check_metadata=False), name
        assert report["rows"][name] == table.num_rows
        assert table.num_rows > 0, name


def test_empty_tables_still_get_files(tmp_path: Path) -> None:
    cfg = SyntheticConfig(users=5, songs=40, artists=4, genres=3, days=3, playlists_per_user=0)
    summary = generate(cfg, tmp_path)
    assert summary.rows["playlists"] == 0
    for name, schema in SCHEMAS.items():
        assert pq.read_table(tmp_path / f"{name}.parquet").schema.equals(
            schema, check_metadata=False
        )


def test_same_seed_gives_the_same_tables_and_another_seed_does_not(
    out: Path, tmp_path: Path
) -> None:
    generate(SMALL, tmp_path / "again")
    generate(SyntheticConfig(users=100, songs=800, artists=80, seed=8), tmp_path / "other")
    for name in SCHEMAS:
        first = pq.read_table(out / f"{name}.parquet")
        assert first.equals(pq.read_table(tmp_path / "again" / f"{name}.parquet")), name
    assert (out / "truth.json").read_bytes() == (tmp_path / "again" / "truth.json").read_bytes()
    for name in ("plays", "songs", "playlist_tracks"):
        first = pq.read_table(out / f"{name}.parquet")
        assert not first.equals(pq.read_table(tmp_path / "other" / f"{name}.parquet")), name


def test_config_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match="got 36"):
        SyntheticConfig(genres=36)
    with pytest.raises(ValueError, match="songs=10, artists=20"):
        SyntheticConfig(songs=10, artists=20)
    with pytest.raises(ValueError, match="not-a-date"):
        SyntheticConfig(start="not-a-date")


def test_progress_rises_to_one(tmp_path: Path) -> None:
    seen: list[float] = []
    generate(
        SyntheticConfig(users=10, songs=50, artists=5, days=3),
        tmp_path,
        progress=lambda _stage, f: seen.append(f),
    )
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


# --------------------------------------------------------------------------- integrity


def test_referential_integrity(tables: dict[str, pd.DataFrame]) -> None:
    users = set(tables["users"].user_id)
    songs = tables["songs"]
    song_ids = set(songs.song_id)
    artists = set(tables["artists"].artist_id)
    genres = set(tables["genres"].genre_id)
    albums = tables["albums"]
    for name, key in [("users", "user_id"), ("songs", "song_id"), ("artists", "artist_id")]:
        assert tables[name][key].is_unique, name
    assert set(tables["plays"].user_id) <= users
    assert set(tables["plays"].song_id) <= song_ids
    assert set(songs.artist_id) == artists  # every artist has a song
    assert set(songs.album_id) == set(albums.album_id)  # every album has a song
    album_artist = dict(zip(albums.album_id, albums.artist_id, strict=True))
    assert (songs.album_id.map(album_artist) == songs.artist_id).all()
    for name, key in [("song_genres", "song_id"), ("artist_genres", "artist_id")]:
        t = tables[name]
        assert set(t.genre_id) <= genres
        assert (t.weight > 0).all()
        assert np.allclose(t.groupby(key).weight.sum(), 1.0)
        assert t.groupby(key).size().between(1, 3).all()
    assert set(tables["song_genres"].song_id) == song_ids
    assert set(tables["artist_genres"].artist_id) == artists
    assert set(tables["playlists"].user_id) <= users
    assert set(tables["playlist_tracks"].playlist_id) == set(tables["playlists"].playlist_id)
    assert set(tables["playlist_tracks"].song_id) <= song_ids


def test_ids_and_users(tables: dict[str, pd.DataFrame]) -> None:
    users = tables["users"]
    assert users.user_id.iloc[0] == "U00001" and users.name.iloc[0] == "user_0001"
    assert tables["songs"].song_id.str.fullmatch(r"S\d{6}").all()
    assert tables["artists"].artist_id.str.fullmatch(r"A\d{4}").all()
    assert tables["albums"].album_id.str.fullmatch(r"AL\d{5}").all()
    assert list(tables["genres"].genre_id[:2]) == ["G01", "G02"]
    assert set(users.user_type) <= set(USER_TYPES)
    assert users.user_type.nunique() >= 4
    assert users.activity_level.between(0.0, 1.0, inclusive="right").all()
    per_user = tables["plays"].groupby("user_id").size()
    mean_activity = users.set_index("user_id").activity_level.groupby(users.user_type.values)
    assert mean_activity.mean()["casual"] < mean_activity.mean()["power"]
    assert 150 < per_user.mean() < 350  # mean_plays_per_user=250


def test_sessions_are_ordered_and_do_not_overlap(tables: dict[str, pd.DataFrame]) -> None:
    plays = tables["plays"]
    assert (plays.session_id.str.split("-s").str[0] == plays.user_id).all()
    for _sid, s in plays.groupby("session_id", sort=False):
        assert list(s.pos) == list(range(len(s)))
        ts, ms = s.ts.to_numpy(), s.ms_played.to_numpy()
        assert (ts[1:] >= ts[:-1] + ms[:-1]).all()
        assert (ts[1:] - (ts[:-1] + ms[:-1]) < 10_000).all()  # small gaps only
    bounds = plays.groupby("session_id").agg(
        user=("user_id", "first"), start=("ts", "min"), end=("ts", "max")
    )
    for _user, b in bounds.groupby("user"):
        b = b.sort_index()  # session ids number sessions in time order
        assert (b.start.to_numpy()[1:] > b.end.to_numpy()[:-1]).all()
    start = SyntheticConfig().start_ms
    assert plays.ts.min() >= start


def test_skip_flag_matches_ms_played(tables: dict[str, pd.DataFrame]) -> None:
    plays = tables["plays"].merge(tables["songs"][["song_id", "duration_ms"]], on="song_id")
    assert (plays.skipped == (plays.ms_played < SKIP_MS)).all()
    assert (plays.ms_played > 0).all()
    assert (plays.ms_played <= plays.duration_ms).all()
    assert 0.05 < plays.skipped.mean() < 0.4


# --------------------------------------------------------------------------- realism


def test_catalogue_looks_like_music(tables: dict[str, pd.DataFrame]) -> None:
    songs, genres = tables["songs"], tables["genres"]
    assert list(genres.name) == list(GENRE_NAMES)
    assert genres.popularity.is_monotonic_decreasing
    minutes = songs.duration_ms / 60_000
    assert 3.0 <= minutes.median() <= 4.5 and minutes.min() >= 1.0
    for f in AUDIO_FEATURES:
        assert songs[f].notna().all() and songs[f].std() > 0, f
    assert songs[["danceability", "energy", "acousticness"]].stack().between(0, 1).all()
    primary = tables["song_genres"].sort_values("weight").groupby("song_id").tail(1)
    genre_names = genres.rename(columns={"name": "genre"})[["genre_id", "genre"]]
    by_genre = songs.merge(primary, on="song_id").merge(genre_names, on="genre_id")
    means = by_genre.groupby("genre")[["energy", "acousticness"]].mean()
    assert means.energy["Metal"] > means.energy["Classical"] + 0.3
    assert means.acousticness["Classical"] > means.acousticness["Metal"] + 0.3
    pop = np.sort(songs.popularity.to_numpy())[::-1]
    assert pop[0] == 1.0 and pop[: len(pop) // 10].sum() > 0.35 * pop.sum()  # heavy-tailed
    ag = tables["artist_genres"].sort_values(["artist_id", "weight"], ascending=[True, False])
    multi = ag.groupby("artist_id").weight.agg(list)
    assert all(w[0] > w[1] for w in multi if len(w) > 1)
    assert tables["albums"].groupby("artist_id").size().max() > 1


def test_genre_plays_are_zipf_like(tables: dict[str, pd.DataFrame]) -> None:
    per_genre = _genre_plays(tables).groupby("genre_id").weight.sum()
    assert per_genre.max() > 5 * per_genre.median()
    assert per_genre.idxmax() == "G01"


def test_listening_hours_follow_habits(tables: dict[str, pd.DataFrame]) -> None:
    plays = tables["plays"]
    hour = (plays.ts // 3_600_000) % 24
    counts = hour.value_counts().reindex(range(24), fill_value=0)
    assert counts[19:23].sum() > 3 * counts[2:6].sum()  # evenings over small hours
    share = []
    for _u, h in hour.groupby(plays.user_id):
        if len(h) >= 100:
            share.append(h.value_counts().head(6).sum() / len(h))
    assert np.mean(share) > 0.45  # a uniform day would give 0.25


def test_sessions_have_runs_repeats_and_taste_dependent_skips(
    tables: dict[str, pd.DataFrame], truth: Truth
) -> None:
    plays = tables["plays"].merge(tables["songs"][["song_id", "artist_id"]], on="song_id")
    same_session = plays.session_id.to_numpy()[1:] == plays.session_id.to_numpy()[:-1]
    same_artist = plays.artist_id.to_numpy()[1:] == plays.artist_id.to_numpy()[:-1]
    assert same_artist[same_session].mean() > 0.12
    assert plays.duplicated(["user_id", "song_id"]).mean() > 0.2
    sg = tables["song_genres"]
    song_genres = sg.groupby("song_id").genre_id.agg(set).to_dict()
    on_taste = np.array(
        [
            bool(song_genres[s] & set(truth.users[u].genres))
            for u, s in zip(plays.user_id, plays.song_id, strict=True)
        ]
    )
    skipped = plays.skipped.to_numpy()
    assert skipped[~on_taste].mean() > skipped[on_taste].mean() + 0.15


def test_playlists_are_themed_on_the_owners_genres(
    tables: dict[str, pd.DataFrame], truth: Truth
) -> None:
    pls, tracks, sg = tables["playlists"], tables["playlist_tracks"], tables["song_genres"]
    assert len(pls) > 20
    names = {gid: name for gid, name in truth.genres.items()}
    song_genres = sg.groupby("song_id").genre_id.agg(set).to_dict()
    for pid, owner, title in zip(pls.playlist_id, pls.user_id, pls.name, strict=True):
        themes = [g for g in truth.users[owner].genres if names[g] in title]
        assert themes, (pid, title)
        songs = tracks[tracks.playlist_id == pid].sort_values("pos")
        assert list(songs.pos) == list(range(len(songs)))
        assert songs.song_id.is_unique
        assert all(song_genres[s] & set(themes) for s in songs.song_id), pid


# --------------------------------------------------------------------------- truth and oracle


def test_truth_round_trip(out: Path, truth: Truth, tables: dict[str, pd.DataFrame]) -> None:
    assert load_truth(out / "truth.json") == truth
    assert truth.config == SMALL
    assert set(truth.users) == set(tables["users"].user_id)
    artists = set(tables["artists"].artist_id)
    types = dict(zip(tables["users"].user_id, tables["users"].user_type, strict=True))
    for uid, u in truth.users.items():
        assert u.user_type == types[uid]
        assert np.isclose(sum(u.genres.values()), 1.0) and min(u.genres.values()) > 0
        assert set(u.favourite_artists) <= artists
        assert 0 < u.exploration < 1 and u.taste_norm > 0
        assert list(u.genres)[0] == u.top_genres(1)[0]
    loyal = [len(u.genres) for u in truth.users.values() if u.user_type == "genre_loyal"]
    explorer = [len(u.genres) for u in truth.users.values() if u.user_type == "explorer"]
    assert max(loyal) <= 2 < min(explorer)


def test_oracle_rows_are_probabilities(out: Path, truth: Truth) -> None:
    songs = pq.read_table(out / "songs.parquet")
    sg = pq.read_table(out / "song_genres.parquet")
    song_ids = songs["song_id"].to_pylist()
    users = list(truth.users)[:20]
    full = oracle_scores(truth, users, song_ids, songs=songs, song_genres=sg)
    assert full.shape == (20, len(song_ids))
    assert np.allclose(full.sum(1), 1.0, atol=1e-9)
    subset = song_ids[::7][::-1]
    part = oracle_scores(truth, users, subset, songs=songs.to_pandas(), song_genres=sg)
    assert np.allclose(part, full[:, [song_ids.index(s) for s in subset]], rtol=1e-12)
    with pytest.raises(ValueError, match="U99999"):
        oracle_scores(truth, ["U99999"], song_ids, songs=songs, song_genres=sg)
    with pytest.raises(ValueError, match="S999999"):
        oracle_scores(truth, users, ["S999999"], songs=songs, song_genres=sg)


def test_oracle_beats_popularity_on_a_temporal_hold_out(
    out: Path, truth: Truth, tables: dict[str, pd.DataFrame]
) -> None:
    plays = tables["plays"].sort_values(["user_id", "ts"], kind="stable")
    song_ids = tables["songs"].song_id.tolist()
    index = {s: i for i, s in enumerate(song_ids)}
    plays = plays.assign(s=plays.song_id.map(index), r=plays.groupby("user_id").cumcount())
    n = plays.user_id.map(plays.groupby("user_id").size())
    train = plays[plays.r < np.floor(0.8 * n)]
    test = plays[plays.r >= np.floor(0.8 * n)]
    popularity = np.bincount(train.s, minlength=len(song_ids))
    users = sorted(plays.user_id.unique())
    oracle = oracle_scores(
        truth,
        users,
        song_ids,
        songs=pq.read_table(out / "songs.parquet"),
        song_genres=pq.read_table(out / "song_genres.parquet"),
    )
    seen = train.groupby("user_id").s.agg(set).to_dict()
    held = test.groupby("user_id").s.agg(set).to_dict()
    ndcg_oracle, ndcg_pop = [], []
    for row, u in enumerate(users):
        relevant = held.get(u, set()) - seen.get(u, set())
        if relevant:
            ndcg_oracle.append(_ndcg_at_10(oracle[row], seen.get(u, set()), relevant))
            ndcg_pop.append(_ndcg_at_10(popularity, seen.get(u, set()), relevant))
    assert len(ndcg_oracle) > 80
    assert np.mean(ndcg_oracle) > 2.0 * np.mean(ndcg_pop)
    assert np.mean(ndcg_oracle) > np.mean(ndcg_pop) + 0.05


def test_most_played_genres_are_the_planted_ones(
    tables: dict[str, pd.DataFrame], truth: Truth
) -> None:
    gp = _genre_plays(tables).sort_values("weight", ascending=False, kind="stable")
    played = gp.groupby("user_id").genre_id.agg(list)
    overlap, hits = [], []
    for u, genres in played.items():
        planted = truth.users[u].top_genres(2)
        overlap.append(len(set(genres[: len(planted)]) & set(planted)) / len(planted))
        hits.append(genres[0] in planted)
    assert np.mean(overlap) > 0.6
    assert np.mean(hits) > 0.85


def test_for_plays_sets_the_total_plays(tmp_path: Path) -> None:
    """Issue 15: the generator takes a total of plays (``--plays``) as well as a mean per user;
    the generated total lands near the asked one."""
    config = SyntheticConfig.for_plays(6_000, users=40, songs=400, artists=40, days=10, seed=5)
    assert config.mean_plays_per_user == 150 and config.users == 40
    summary = generate(config, tmp_path / "g")
    assert 0.9 * 6_000 <= summary.rows["plays"] <= 1.1 * 6_000
    with pytest.raises(ValueError, match="plays must be >= users"):
        SyntheticConfig.for_plays(10, users=40)
