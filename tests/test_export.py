"""Neo4j -> GraphSnapshot export, its restrictions, save/load, and the PyG stores.

Every expectation is computed by an independent Cypher query over the same graph (the export's
own statements are never used as the oracle), against a small synthetic graph loaded once per
module and reloaded when another test has wiped it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pytest
import torch

from gnn.graph._data import EDGE_TYPES, build_train_data, temporal_split
from gnn.graph._export import SONG_FEATURES, NodeIndex, export_snapshot, fill_missing
from gnn.graph._snapshot import GraphSnapshot, count_edges, load_snapshot, save_snapshot
from gnn.graph._store import STORED_EDGE_TYPES, neo4j_stores
from graphdb import wipe_graph
from ingest._loader import Loader
from ingest._synthetic import SyntheticConfig, generate
from spotify_engine.settings import Settings

pytestmark = pytest.mark.neo4j

SMALL = SyntheticConfig(users=60, songs=400, artists=40, genres=12, seed=11, mean_plays_per_user=80)


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export-synthetic")
    generate(SMALL, out)
    return out


@pytest.fixture()
def loaded(driver: neo4j.Driver, neo4j_settings: Settings, tables: Path) -> neo4j.Driver:
    """The small synthetic graph (loaded once; reloaded when another test wiped the graph)."""
    db = neo4j_settings.neo4j_database
    loader = Loader(driver, db)
    if not loader.already_applied(_batch_id(tables)):
        wipe_graph(driver, db)
        loader.load(tables, source="synthetic")
    return driver


_BATCH: dict[Path, str] = {}


def _batch_id(folder: Path) -> str:
    from ingest._loader import batch_id

    if folder not in _BATCH:
        _BATCH[folder] = batch_id(folder)
    return _BATCH[folder]


@pytest.fixture()
def full(loaded: neo4j.Driver, neo4j_settings: Settings) -> GraphSnapshot:
    return export_snapshot(loaded, neo4j_settings.neo4j_database)


def q(driver: neo4j.Driver, settings: Settings, text: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(
        text, params, database_=settings.neo4j_database, routing_=neo4j.RoutingControl.READ
    )
    return [r.data() for r in records]


def ids_of(driver: neo4j.Driver, settings: Settings, label_query: str, **params: Any) -> list[str]:
    return sorted(r["id"] for r in q(driver, settings, label_query, **params))


# Oracle rows: one per play, keyed by graph ids.
_PLAYS = """
MATCH (u:User)-[:HAD]->(se:Session)-[p:PLAYED]->(s:Song)
WHERE ($until IS NULL OR p.at < $until)
  AND ($users IS NULL OR u.id IN $users)
  AND ($songs IS NULL OR s.id IN $songs)
RETURN u.id AS user, s.id AS song, p.at AS at, p.ms_played AS ms, p.skipped AS skipped,
       se.id AS session
"""


def oracle_plays(
    driver: neo4j.Driver,
    settings: Settings,
    *,
    until: int | None = None,
    users: list[str] | None = None,
    songs: list[str] | None = None,
) -> Counter[tuple[Any, ...]]:
    rows = q(driver, settings, _PLAYS, until=until, users=users, songs=songs)
    return Counter(
        (r["user"], r["song"], r["at"], r["ms"], r["skipped"], r["session"]) for r in rows
    )


def exported_plays(snap: GraphSnapshot, session_ids: list[str]) -> Counter[tuple[Any, ...]]:
    """The snapshot's plays keyed by graph ids; ``session_ids`` are the sorted ids of the
    sessions it holds (its ``play_session`` indexes them)."""
    return Counter(
        zip(
            snap.user_ids[snap.play_user].tolist(),
            snap.song_ids[snap.play_song].tolist(),
            snap.play_ts.tolist(),
            snap.play_ms.tolist(),
            snap.play_skipped.tolist(),
            np.asarray(session_ids, dtype=object)[snap.play_session].tolist(),
            strict=True,
        )
    )


def check_plays(snap: GraphSnapshot, oracle: Counter[tuple[Any, ...]]) -> None:
    sessions = sorted({key[5] for key in oracle})
    assert snap.num_plays == sum(oracle.values())
    assert exported_plays(snap, sessions) == oracle


def edge_set(snap: GraphSnapshot, field: str, src: str, dst: str) -> set[tuple[str, str]]:
    e = getattr(snap, field)
    return set(
        zip(
            getattr(snap, src)[e[0]].tolist(),
            getattr(snap, dst)[e[1]].tolist(),
            strict=True,
        )
    )


# --------------------------------------------------------------------------- pure logic


def test_node_index_sorts_by_graph_id_and_maps_internal_ids() -> None:
    index, perm = NodeIndex.build([70, 10, 50], ["c", "a", "b"])
    assert index.ids.tolist() == ["a", "b", "c"] and index.nids.tolist() == [10, 50, 70]
    assert perm.tolist() == [1, 2, 0]
    idx, ok = index.lookup(np.array([50, 70, 99, 10]))
    assert idx[ok].tolist() == [1, 2, 0] and ok.tolist() == [True, True, False, True]


def test_fill_missing_uses_column_means_and_zero_for_empty_columns() -> None:
    x = np.array([[1.0, np.nan, np.nan], [3.0, 4.0, np.nan], [np.nan, 6.0, np.nan]])
    out = fill_missing(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[1, 5, 0], [3, 4, 0], [2, 6, 0]])


# --------------------------------------------------------------------------- full export


def test_export_matches_cypher_counts_ids_and_every_play(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot
) -> None:
    s = neo4j_settings
    for field, label in (
        ("user_ids", "User"),
        ("song_ids", "Song"),
        ("artist_ids", "Artist"),
        ("genre_ids", "Genre"),
        ("playlist_ids", "Playlist"),
    ):
        # Labels cannot be parameters; these five are fixed test literals.
        expected = ids_of(loaded, s, f"MATCH (n:{label}) RETURN n.id AS id")
        assert getattr(full, field).tolist() == expected, field
    counts = q(
        loaded,
        s,
        """
        RETURN COUNT { ()-[:PLAYED]->() } AS plays,
               COUNT { (:Song)-[:BY]->(:Artist) } AS song_artist,
               COUNT { (:Song)-[:IN_GENRE]->(:Genre) } AS song_genre,
               COUNT { (:Artist)-[:IN_GENRE]->(:Genre) } AS artist_genre,
               COUNT { (:Playlist)-[:CONTAINS]->(:Song) } AS playlist_song
        """,
    )[0]
    assert full.num_plays == counts["plays"] > 1000
    assert full.song_artist.shape == (2, counts["song_artist"])
    assert full.song_genre.shape == (2, counts["song_genre"])
    assert full.artist_genre.shape == (2, counts["artist_genre"])
    assert full.playlist_song.shape == (2, counts["playlist_song"])
    assert count_edges(full) == sum(counts.values())

    # Every play, with its session, maps back to the graph.
    check_plays(full, oracle_plays(loaded, s))
    assert set(np.unique(full.play_session)) == set(range(full.play_session.max() + 1))

    # Static edges and their attributes.
    rows = q(loaded, s, "MATCH (s:Song)-[:BY]->(a:Artist) RETURN s.id AS s, a.id AS a")
    assert edge_set(full, "song_artist", "song_ids", "artist_ids") == {
        (r["s"], r["a"]) for r in rows
    }
    rows = q(
        loaded,
        s,
        "MATCH (s:Song)-[r:IN_GENRE]->(g:Genre) RETURN s.id AS s, g.id AS g, r.weight AS w",
    )
    want = {(r["s"], r["g"]): r["w"] for r in rows}
    got = dict(
        zip(
            zip(
                full.song_ids[full.song_genre[0]].tolist(),
                full.genre_ids[full.song_genre[1]].tolist(),
                strict=True,
            ),
            full.song_genre_weight.tolist(),
            strict=True,
        )
    )
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-6)
    rows = q(
        loaded,
        s,
        "MATCH (a:Artist)-[r:IN_GENRE]->(g:Genre) RETURN a.id AS a, g.id AS g, r.weight AS w",
    )
    assert edge_set(full, "artist_genre", "artist_ids", "genre_ids") == {
        (r["a"], r["g"]) for r in rows
    }
    rows = q(
        loaded,
        s,
        "MATCH (p:Playlist)-[c:CONTAINS]->(s:Song) RETURN p.id AS p, s.id AS s, c.pos AS pos",
    )
    got_pl = Counter(
        zip(
            full.playlist_ids[full.playlist_song[0]].tolist(),
            full.song_ids[full.playlist_song[1]].tolist(),
            full.playlist_song_pos.tolist(),
            strict=True,
        )
    )
    assert got_pl == Counter((r["p"], r["s"], r["pos"]) for r in rows)

    # Content features and names, spot-checked by id.
    assert full.song_feature_names == list(SONG_FEATURES)
    assert full.song_features.shape == (full.num_songs, len(SONG_FEATURES))
    assert np.isfinite(full.song_features).all()
    assert full.song_names is not None and full.genre_names is not None
    pick = full.song_ids[[0, 7, full.num_songs - 1]].tolist()
    for r in q(loaded, s, "MATCH (s:Song) WHERE s.id IN $ids RETURN s{.*} AS s", ids=pick):
        i = full.song_ids.tolist().index(r["s"]["id"])
        assert full.song_names[i] == r["s"]["name"]
        np.testing.assert_allclose(
            full.song_features[i], [r["s"][f] for f in SONG_FEATURES], rtol=1e-6
        )
    genre_names = {
        r["id"]: r["name"]
        for r in q(loaded, s, "MATCH (g:Genre) RETURN g.id AS id, g.name AS name")
    }
    assert full.genre_names.tolist() == [genre_names[g] for g in full.genre_ids]


def test_export_is_deterministic_and_canonically_ordered(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot
) -> None:
    again = export_snapshot(loaded, neo4j_settings.neo4j_database, workers=1)
    assert again.snapshot_id() == full.snapshot_id()
    key = np.lexsort((full.play_ts, full.play_user))
    assert np.array_equal(key, np.arange(full.num_plays))
    for field in ("song_artist", "song_genre", "artist_genre", "playlist_song"):
        e = getattr(full, field)
        assert np.array_equal(np.lexsort((e[1], e[0])), np.arange(e.shape[1])), field


# --------------------------------------------------------------------------- restrictions


def test_until_ms_keeps_the_held_out_period_out(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot
) -> None:
    s = neo4j_settings
    split = temporal_split(full)
    cut = int(full.play_ts[split.test].min())
    train = export_snapshot(loaded, s.neo4j_database, until_ms=cut)

    assert train.num_plays and (train.play_ts < cut).all()
    check_plays(train, oracle_plays(loaded, s, until=cut))
    # Node sets unchanged, so indices are comparable with the full export...
    assert train.user_ids.tolist() == full.user_ids.tolist()
    assert train.song_ids.tolist() == full.song_ids.tolist()
    # ...and no held-out play is in the training export.
    key = lambda sn, m: set(  # noqa: E731
        zip(sn.play_user[m].tolist(), sn.play_song[m].tolist(), sn.play_ts[m].tolist(), strict=True)
    )
    held_out = key(full, split.test)
    assert held_out and not held_out & key(train, np.ones(train.num_plays, dtype=bool))
    # Playlists: only those modified before the cut-off.
    expected = ids_of(
        loaded, s, "MATCH (p:Playlist) WHERE p.modified_at < $cut RETURN p.id AS id", cut=cut
    )
    assert 0 < len(expected) < full.num_playlists
    assert train.playlist_ids.tolist() == expected
    rows = q(
        loaded,
        s,
        "MATCH (p:Playlist)-[:CONTAINS]->(s:Song) WHERE p.modified_at < $cut "
        "RETURN p.id AS p, s.id AS s",
        cut=cut,
    )
    assert edge_set(train, "playlist_song", "playlist_ids", "song_ids") == {
        (r["p"], r["s"]) for r in rows
    }


def test_users_sample_restricts_users_and_plays_only(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot
) -> None:
    s = neo4j_settings
    sample = full.user_ids[::7].tolist()[::-1]  # any order in, sorted out
    snap = export_snapshot(loaded, s.neo4j_database, users=sample)
    assert snap.user_ids.tolist() == sorted(sample)
    check_plays(snap, oracle_plays(loaded, s, users=sample))
    for field in ("song_ids", "artist_ids", "genre_ids", "playlist_ids"):
        assert getattr(snap, field).tolist() == getattr(full, field).tolist(), field
    assert np.array_equal(snap.song_genre, full.song_genre)
    assert np.array_equal(snap.song_features, full.song_features)


def test_genres_restrict_songs_and_what_hangs_off_them(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot
) -> None:
    s = neo4j_settings
    genres = full.genre_ids[[1, 4]].tolist()
    snap = export_snapshot(loaded, s.neo4j_database, genres=genres)
    songs = ids_of(
        loaded,
        s,
        "MATCH (s:Song)-[:IN_GENRE]->(g:Genre) WHERE g.id IN $g RETURN DISTINCT s.id AS id",
        g=genres,
    )
    assert 0 < len(songs) < full.num_songs
    assert snap.song_ids.tolist() == songs
    assert snap.user_ids.tolist() == full.user_ids.tolist()
    assert snap.genre_ids.tolist() == full.genre_ids.tolist()
    check_plays(snap, oracle_plays(loaded, s, songs=songs))
    artists = ids_of(
        loaded,
        s,
        "MATCH (s:Song)-[:BY]->(a:Artist) WHERE s.id IN $s RETURN DISTINCT a.id AS id",
        s=songs,
    )
    assert snap.artist_ids.tolist() == artists
    playlists = ids_of(
        loaded,
        s,
        "MATCH (p:Playlist)-[:CONTAINS]->(s:Song) WHERE s.id IN $s RETURN DISTINCT p.id AS id",
        s=songs,
    )
    assert snap.playlist_ids.tolist() == playlists
    rows = q(
        loaded,
        s,
        "MATCH (s:Song)-[:IN_GENRE]->(g:Genre) WHERE s.id IN $s RETURN s.id AS s, g.id AS g",
        s=songs,
    )
    assert edge_set(snap, "song_genre", "song_ids", "genre_ids") == {(r["s"], r["g"]) for r in rows}
    rows = q(
        loaded,
        s,
        "MATCH (p:Playlist)-[:CONTAINS]->(s:Song) WHERE s.id IN $s RETURN p.id AS p, s.id AS s",
        s=songs,
    )
    assert edge_set(snap, "playlist_song", "playlist_ids", "song_ids") == {
        (r["p"], r["s"]) for r in rows
    }
    rows = q(
        loaded,
        s,
        "MATCH (a:Artist)-[:IN_GENRE]->(g:Genre) WHERE a.id IN $a RETURN a.id AS a, g.id AS g",
        a=artists,
    )
    assert edge_set(snap, "artist_genre", "artist_ids", "genre_ids") == {
        (r["a"], r["g"]) for r in rows
    }
    # The same songs' features as in the full export.
    rows_full = np.searchsorted(full.song_ids.astype(str), snap.song_ids.astype(str))
    np.testing.assert_array_equal(snap.song_features, full.song_features[rows_full])


def _khop_oracle(
    driver: neo4j.Driver, s: Settings, seeds: list[str], k: int, until: int | None
) -> tuple[list[str], list[str]]:
    """Users and songs within k hops, by breadth-first search over PLAYED (not LISTENED)."""
    adjacency = """
    MATCH (u:User)-[:HAD]->(:Session)-[p:PLAYED]->(s:Song)
    WHERE $until IS NULL OR p.at < $until
    RETURN DISTINCT u.id AS u, s.id AS s
    """
    pairs = [(r["u"], r["s"]) for r in q(driver, s, adjacency, until=until)]
    users: set[str] = set(seeds)
    songs: set[str] = set()
    frontier = set(seeds)
    for hop in range(1, k + 1):
        if hop % 2:
            frontier = {sg for u, sg in pairs if u in frontier} - songs
            songs |= frontier
        else:
            frontier = {u for u, sg in pairs if sg in frontier} - users
            users |= frontier
    return sorted(users), sorted(songs)


@pytest.mark.parametrize(("k", "with_cutoff"), [(1, False), (2, False), (3, True)])
def test_khop_is_the_induced_neighbourhood(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot, k: int, with_cutoff: bool
) -> None:
    s = neo4j_settings
    seeds = full.user_ids[[3, 40]].tolist()
    until = int(np.median(full.play_ts)) if with_cutoff else None
    snap = export_snapshot(loaded, s.neo4j_database, khop=(seeds, k), until_ms=until)
    users, songs = _khop_oracle(loaded, s, seeds, k, until)
    assert snap.user_ids.tolist() == users
    assert snap.song_ids.tolist() == songs
    if k == 1:
        assert users == sorted(seeds)
    else:
        assert len(users) > len(seeds)
    check_plays(snap, oracle_plays(loaded, s, until=until, users=users, songs=songs))
    artists = ids_of(
        loaded,
        s,
        "MATCH (s:Song)-[:BY]->(a:Artist) WHERE s.id IN $s RETURN DISTINCT a.id AS id",
        s=songs,
    )
    assert snap.artist_ids.tolist() == artists


def test_restrictions_compose(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot
) -> None:
    s = neo4j_settings
    genres = full.genre_ids[[0]].tolist()
    sample = full.user_ids[:30].tolist()
    cut = int(np.median(full.play_ts))
    snap = export_snapshot(loaded, s.neo4j_database, users=sample, genres=genres, until_ms=cut)
    songs = ids_of(
        loaded,
        s,
        "MATCH (s:Song)-[:IN_GENRE]->(g:Genre) WHERE g.id IN $g RETURN DISTINCT s.id AS id",
        g=genres,
    )
    assert snap.user_ids.tolist() == sorted(sample) and snap.song_ids.tolist() == songs
    check_plays(snap, oracle_plays(loaded, s, until=cut, users=sample, songs=songs))


def test_bad_restrictions_name_the_bad_value(
    loaded: neo4j.Driver, neo4j_settings: Settings
) -> None:
    db = neo4j_settings.neo4j_database
    with pytest.raises(ValueError, match="NOPE"):
        export_snapshot(loaded, db, users=["NOPE"])
    with pytest.raises(ValueError, match="G-none"):
        export_snapshot(loaded, db, genres=["G-none"])
    with pytest.raises(ValueError, match="k must be"):
        export_snapshot(loaded, db, khop=(["U00001"], 0))
    with pytest.raises(ValueError, match="at least one"):
        export_snapshot(loaded, db, users=[])
    with pytest.raises(ValueError, match="until_ms"):
        export_snapshot(loaded, db, until_ms=1.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- downstream


def test_save_load_round_trip(full: GraphSnapshot, tmp_path: Path) -> None:
    for target in (tmp_path / "folder", tmp_path / "run" / "snapshot.npz"):
        written = save_snapshot(full, target)
        assert written.suffix == ".npz" and written.with_suffix(".json").is_file()
        back = load_snapshot(target)
        assert back.snapshot_id() == full.snapshot_id()
        for name in GraphSnapshot.__dataclass_fields__:
            a, b = getattr(full, name), getattr(back, name)
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and a.shape == b.shape, name
                assert np.array_equal(a, b), name
            else:
                assert a == b, name
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "snapshot.json",
        "snapshot.npz",
    ]
    with pytest.raises(FileNotFoundError):
        load_snapshot(tmp_path / "missing")


def test_build_train_data_runs_on_the_export(full: GraphSnapshot) -> None:
    split = temporal_split(full)
    data = build_train_data(full, split.train)
    h = data.hetero
    assert h["user"].num_nodes == full.num_users and h["song"].num_nodes == full.num_songs
    assert h["song"].x.shape[0] == full.num_songs and torch.isfinite(h["song"].x).all()
    assert h["playlist"].num_nodes == full.num_playlists
    assert data.matrix.sum() == split.train.sum()
    listened = h["user", "listened", "song"].edge_index
    assert listened.shape[1] == data.matrix.nnz
    assert h["song", "by", "artist"].edge_index.shape[1] == full.song_artist.shape[1]


def test_graph_store_serves_the_export_edges(
    loaded: neo4j.Driver, neo4j_settings: Settings, full: GraphSnapshot
) -> None:
    feature_store, graph_store = neo4j_stores(loaded, neo4j_settings.neo4j_database)
    row, col = graph_store.get_edge_index(("user", "listened", "song"), layout="coo")
    pairs = np.unique(full.play_user * full.num_songs + full.play_song)
    assert np.array_equal(row.numpy() * full.num_songs + col.numpy(), pairs)
    # Stored static edges equal the export's, reverses are flipped.
    fields = {
        ("song", "by", "artist"): "song_artist",
        ("song", "in_genre", "genre"): "song_genre",
        ("artist", "in_genre", "genre"): "artist_genre",
        ("playlist", "contains", "song"): "playlist_song",
    }
    for et, field in fields.items():
        r, c = graph_store.get_edge_index(et, layout="coo")
        assert np.array_equal(np.vstack([r.numpy(), c.numpy()]), getattr(full, field)), et
        rr, rc = graph_store.get_edge_index(EDGE_TYPES[et], layout="coo")
        assert set(zip(rr.tolist(), rc.tolist(), strict=True)) == set(
            zip(c.tolist(), r.tolist(), strict=True)
        )
    # CSR of listened agrees with the COO.
    ptr, csr_col = graph_store.get_edge_index(("user", "listened", "song"), layout="csr")
    assert ptr.shape == (full.num_users + 1,) and int(ptr[-1]) == len(row)
    assert torch.equal(csr_col, col)
    attrs = {a.edge_type: a for a in graph_store.get_all_edge_attrs()}
    assert set(STORED_EDGE_TYPES) <= attrs.keys()
    assert attrs[("user", "listened", "song")].size == (full.num_users, full.num_songs)
    with pytest.raises(KeyError):
        graph_store.get_edge_index(("user", "likes", "genre"), layout="coo")
    assert graph_store.put_edge_index((row, col), ("user", "listened", "song"), "coo") is False

    # Features: all rows, then an arbitrary index with a repeat.
    x = feature_store.get_tensor("song", "x", None)
    np.testing.assert_allclose(x.numpy(), full.song_features, rtol=1e-6)
    idx = torch.tensor([5, 0, 5, full.num_songs - 1])
    np.testing.assert_allclose(
        feature_store.get_tensor("song", "x", idx).numpy(), full.song_features[idx.numpy()]
    )
    assert feature_store.get_tensor_size("song", "x", None) == (full.num_songs, len(SONG_FEATURES))
    assert feature_store.get_tensor("user", "x", torch.arange(3)).shape == (3, 1)
    with pytest.raises(KeyError):
        feature_store.get_tensor("playlist", "x", None)


def test_missing_song_features_become_means_and_zero_columns(
    graph: neo4j.Driver, neo4j_settings: Settings, tables: Path
) -> None:
    """Also the empty graph. Mutates the graph, so it starts from and leaves an empty one
    (the other tests reload theirs)."""
    s = neo4j_settings
    try:
        empty = export_snapshot(graph, s.neo4j_database)
        assert empty.num_users == empty.num_songs == empty.num_plays == count_edges(empty) == 0
        assert empty.song_features.shape == (0, len(SONG_FEATURES))
        with warnings.catch_warnings():  # means over zero rows
            warnings.simplefilter("ignore", RuntimeWarning)
            assert build_train_data(empty, np.zeros(0, dtype=bool)).matrix.nnz == 0

        Loader(graph, s.neo4j_database).load(tables, source="synthetic")
        graph.execute_query(
            "MATCH (s:Song) REMOVE s.speechiness WITH s WHERE s.id = $id REMOVE s.energy",
            id="S000002",
            database_=s.neo4j_database,
        )
        snap = export_snapshot(graph, s.neo4j_database)
        col = {f: i for i, f in enumerate(snap.song_feature_names)}
        i = snap.song_ids.tolist().index("S000002")
        assert (snap.song_features[:, col["speechiness"]] == 0).all()
        others = np.delete(snap.song_features[:, col["energy"]], i)
        assert snap.song_features[i, col["energy"]] == pytest.approx(others.mean(), rel=1e-5)
        feature_store, _ = neo4j_stores(graph, s.neo4j_database)
        x = feature_store.get_tensor("song", "x", torch.tensor([i]))
        np.testing.assert_allclose(x.numpy()[0], snap.song_features[i], rtol=1e-5)
    finally:
        wipe_graph(graph, s.neo4j_database)


def test_plays_without_ms_played_or_skipped_still_export(
    graph: neo4j.Driver, neo4j_settings: Settings, tables: Path
) -> None:
    """Regression: Last.fm plays and API play events may have no ``ms_played``; the list-packed
    export must keep its columns aligned (-1 = unknown, not skipped) instead of failing."""
    s = neo4j_settings
    try:
        wipe_graph(graph, s.neo4j_database)
        Loader(graph, s.neo4j_database).load(tables, source="synthetic")
        before = export_snapshot(graph, s.neo4j_database)
        graph.execute_query(
            "MATCH (:User {id: $u})-[:HAD]->()-[p:PLAYED]->() REMOVE p.ms_played, p.skipped",
            u="U00002",
            database_=s.neo4j_database,
        )
        snap = export_snapshot(graph, s.neo4j_database)
        assert snap.num_plays == before.num_plays
        mine = snap.play_user == snap.user_ids.tolist().index("U00002")
        assert mine.any() and (snap.play_ms[mine] == -1).all()
        assert not snap.play_skipped[mine].any()
        np.testing.assert_array_equal(snap.play_ms[~mine], before.play_ms[~mine])
        np.testing.assert_array_equal(snap.play_song, before.play_song)
    finally:
        wipe_graph(graph, s.neo4j_database)
