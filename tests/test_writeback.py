"""Write-back of recommendations and explanations, and the cypher/explain queries (issue 5)."""

from __future__ import annotations

import neo4j
import pytest

from graphdb import Evidence, RecommendationRow, Writeback, get_registry
from spotify_engine.settings import Settings

pytestmark = pytest.mark.neo4j


def _tiny_graph(driver: neo4j.Driver, db: str) -> None:
    driver.execute_query(
        """
        CREATE (u1:User {id: 'u1', name: 'Ann'}), (u2:User {id: 'u2', name: 'Bob'}),
               (g1:Genre {id: 'g1', name: 'Indie Rock'}), (g2:Genre {id: 'g2', name: 'Jazz'}),
               (a1:Artist {id: 'a1', name: 'The Band'}),
               (s1:Song {id: 's1', name: 'One'}), (s2:Song {id: 's2', name: 'Two'}),
               (s3:Song {id: 's3', name: 'Three'}), (s4:Song {id: 's4', name: 'Four'}),
               (s1)-[:BY]->(a1), (s2)-[:BY]->(a1), (s3)-[:BY]->(a1),
               (s1)-[:IN_GENRE {weight: 1.0}]->(g1), (s3)-[:IN_GENRE {weight: 1.0}]->(g1),
               (s4)-[:IN_GENRE {weight: 1.0}]->(g2),
               (u1)-[:LISTENED {plays: 3}]->(s1), (u1)-[:LISTENED {plays: 1}]->(s2),
               (u2)-[:LISTENED {plays: 2}]->(s4)
        """,
        database_=db,
    )


def _rows(run: str) -> list[RecommendationRow]:
    return [
        RecommendationRow(
            "u1",
            "s3",
            1,
            2.5,
            [
                Evidence("Song", "s1", "played", 0.6),
                Evidence("Artist", "a1", "artist", 0.3),
                Evidence("Genre", "g1", "genre", 0.1),
            ],
            reason=f"Because you played One ({run})",
        ),
        RecommendationRow("u1", "s4", 2, 1.0, [Evidence("User", "u2", "similar_user", 0.9)]),
        RecommendationRow("u2", "s1", 1, 0.7, [Evidence("Genre", "g1", "genre", 0.4)]),
    ]


def test_writeback_and_explain_queries(graph: neo4j.Driver, neo4j_settings: Settings) -> None:
    db = neo4j_settings.neo4j_database
    _tiny_graph(graph, db)
    reg = get_registry()
    wb = Writeback(graph, db, run_id="run-a", model="EnhancedGAT")
    res = wb.recommendations(_rows("a"))
    assert (res.users, res.recommendations, res.evidence) == (2, 3, 5)
    wb.similar_songs([("s1", "s3", 0.9), ("s1", "s2", 0.95), ("s3", "s1", 0.9)])
    wb.affinities([("u1", "g1", 0.8), ("u1", "g2", 0.2)])
    wb.record_run({"ndcg@10": 0.3})

    rec, _, _ = graph.execute_query(
        reg.query("explain/why_recommended"), user_id="u1", song_id="s3", database_=db
    )
    assert len(rec) == 1
    r = rec[0]
    assert (r["rank"], r["score"], r["run_id"], r["model"]) == (1, 2.5, "run-a", "EnhancedGAT")
    assert [(e["kind"], e["id"], e["weight"]) for e in r["evidence"]] == [
        ("played", "s1", 0.6),
        ("artist", "a1", 0.3),
        ("genre", "g1", 0.1),
    ]
    assert r["evidence"][0]["name"] == "One" and r["evidence"][0]["label"] == "Song"

    recs, _, _ = graph.execute_query(
        reg.query("explain/recommendations_for_user"), user_id="u1", k=10, database_=db
    )
    assert [x["song_id"] for x in recs] == ["s3", "s4"]
    assert [x["name"] for x in recs[0]["reasons"]] == ["One", "The Band", "Indie Rock"]

    genres, _, _ = graph.execute_query(
        reg.query("explain/genres_driving_user"), user_id="u1", database_=db
    )
    top = genres[0]
    assert top["genre"] == "Indie Rock" and top["affinity"] == 0.8
    assert top["evidence_weight"] == pytest.approx(0.6 + 0.1)

    users, _, _ = graph.execute_query(
        reg.query("explain/users_for_song"), song_id="s1", k=5, database_=db
    )
    assert [(u["user_id"], u["top_kind"], u["top_reason"]) for u in users] == [
        ("u2", "genre", "Indie Rock")
    ]

    sim, _, _ = graph.execute_query(
        reg.query("explain/similar_songs"), song_id="s1", k=5, database_=db
    )
    assert [(s["song_id"], s["rank"]) for s in sim] == [("s2", 1), ("s3", 2)]

    g, _, _ = graph.execute_query(
        reg.query("explain/explanation_graph"), user_id="u1", song_id="s3", database_=db
    )
    assert len(g) == 1 and len(g[0]["evidence"]) == 3


def test_new_run_replaces_old_atomically(graph: neo4j.Driver, neo4j_settings: Settings) -> None:
    db = neo4j_settings.neo4j_database
    _tiny_graph(graph, db)
    Writeback(graph, db, run_id="run-a", model="m").recommendations(_rows("a"))
    Writeback(graph, db, run_id="run-a", model="m").recommendations(_rows("a"))  # same run again
    wb = Writeback(graph, db, run_id="run-b", model="m")
    wb.recommendations(
        [RecommendationRow("u1", "s4", 1, 3.0, [Evidence("Genre", "g2", "genre", 1.0)])]
    )
    recs, _, _ = graph.execute_query(
        "MATCH (u:User)-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song) "
        "RETURN u.id AS u, s.id AS s, r.run_id AS run ORDER BY u, s",
        database_=db,
    )
    # u1 was replaced by run-b; u2 was not in run-b and keeps run-a.
    assert [(r["u"], r["s"], r["run"]) for r in recs] == [
        ("u1", "s4", "run-b"),
        ("u2", "s1", "run-a"),
    ]
    n, _, _ = graph.execute_query(
        "MATCH (:User {id: 'u1'})-[x:RECOMMENDED]->() RETURN count(x) AS n", database_=db
    )
    assert n[0]["n"] == 1
    orphans, _, _ = graph.execute_query(
        "MATCH (r:Recommendation) WHERE NOT (r)<-[:RECEIVED]-() RETURN count(r) AS n", database_=db
    )
    assert orphans[0]["n"] == 0


def test_rows_pointing_outside_the_graph_write_nothing_for_it(
    graph: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """A row for a song (or user) not in the graph is left out and a piece of evidence for a
    missing node is skipped; the counts are what was written. Every fact of an edge lands."""
    db = neo4j_settings.neo4j_database
    _tiny_graph(graph, db)
    wb = Writeback(graph, db, run_id="run-a", model="m")
    res = wb.recommendations(
        [
            RecommendationRow(
                "u1",
                "s3",
                1,
                2.0,
                [
                    Evidence("Genre", "g1", "genre_affinity", 0.5, True, share_of_plays=0.75),
                    Evidence("Artist", "nowhere", "artist", 0.3),
                    Evidence("User", "u2", "similar_user", 0.2, songs_in_common=4),
                ],
            ),
            RecommendationRow("u1", "no-such-song", 2, 1.0, [Evidence("Song", "s1", "played", 1)]),
            RecommendationRow("ghost", "s1", 1, 1.0, [Evidence("Song", "s2", "played", 1)]),
        ]
    )
    assert (res.users, res.recommendations, res.evidence) == (2, 1, 2)
    got, _, _ = graph.execute_query(
        "MATCH (:User {id: 'u1'})-[:RECEIVED]->(r:Recommendation)-[b:BECAUSE]->(e) "
        "RETURN e.id AS id, b {.*} AS b ORDER BY b.rank",
        database_=db,
    )
    assert [(g["id"], g["b"]) for g in got] == [
        ("g1", {"kind": "genre_affinity", "weight": 0.5, "rank": 1, "named": True,
                "share_of_plays": 0.75}),
        ("u2", {"kind": "similar_user", "weight": 0.2, "rank": 3, "named": False,
                "songs_in_common": 4}),
    ]  # fmt: skip
    wb.remove_recommendations(["u1", "ghost"])
    left, _, _ = graph.execute_query("MATCH (r:Recommendation) RETURN count(r) AS n", database_=db)
    assert left[0]["n"] == 0


def test_chunks_are_written_while_the_next_is_computed(
    graph: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """recommendations_from: the writes run in another thread, in order, one chunk behind the
    producer; a user in two chunks is refused before anything of that chunk is written."""
    import threading

    db = neo4j_settings.neo4j_database
    _tiny_graph(graph, db)
    wb = Writeback(graph, db, run_id="run-a", model="m")
    writers: set[str] = set()
    seen_by_producer: list[int] = []
    real = wb._write

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        writers.add(threading.current_thread().name)
        return real(*args, **kwargs)

    wb._write = spy  # type: ignore[method-assign]
    rows = _rows("a")

    def chunks():  # type: ignore[no-untyped-def]
        yield [r for r in rows if r.user_id == "u1"]
        seen_by_producer.append(_count(graph, db))
        yield [r for r in rows if r.user_id == "u2"]

    res = wb.recommendations_from(chunks(), users=2)
    assert (res.users, res.recommendations, res.evidence) == (2, 3, 5)
    assert writers and all(name.startswith("writeback") for name in writers)
    assert _count(graph, db) == 3 and seen_by_producer[0] in (0, 2)
    with pytest.raises(ValueError, match="u1"):
        wb.recommendations_from([rows[:1], rows[1:2]])


def _count(driver: neo4j.Driver, db: str) -> int:
    n, _, _ = driver.execute_query("MATCH (r:Recommendation) RETURN count(r) AS n", database_=db)
    return int(n[0]["n"])


def test_similar_and_affinity_replace_the_owners_edges(
    graph: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """A second run replaces the SIMILAR_TO of the songs and the AFFINITY of the users it
    names, keeps the others', and counts only edges between nodes in the graph."""
    db = neo4j_settings.neo4j_database
    _tiny_graph(graph, db)
    Writeback(graph, db, run_id="a", model="m").similar_songs(
        [("s1", "s2", 0.9), ("s1", "s3", 0.5), ("s4", "s1", 0.7)]
    )
    Writeback(graph, db, run_id="a", model="m").affinities([("u1", "g1", 0.75), ("u2", "g2", 1)])
    wb = Writeback(graph, db, run_id="b", model="m")
    assert wb.similar_songs([("s1", "s4", 0.8), ("s1", "nowhere", 0.9)]) == 1
    assert wb.affinities([("u1", "g2", 0.25, 1), ("ghost", "g1", 1.0)]) == 1
    sim, _, _ = graph.execute_query(
        "MATCH (a:Song)-[x:SIMILAR_TO]->(b:Song) "
        "RETURN a.id AS a, b.id AS b, x.rank AS rank, x.run_id AS run ORDER BY a, b",
        database_=db,
    )
    assert [tuple(r.values()) for r in sim] == [("s1", "s4", 2, "b"), ("s4", "s1", 1, "a")]
    aff, _, _ = graph.execute_query(
        "MATCH (u:User)-[x:AFFINITY]->(g:Genre) "
        "RETURN u.id AS u, g.id AS g, x.weight AS w, x.plays AS plays, x.run_id AS run "
        "ORDER BY u",
        database_=db,
    )
    assert [tuple(r.values()) for r in aff] == [
        ("u1", "g2", 0.25, 1, "b"),
        ("u2", "g2", 1.0, None, "a"),
    ]


def test_evidence_label_allow_list() -> None:
    with pytest.raises(ValueError, match="evidence label"):
        Evidence("Session`) DETACH DELETE", "x", "played", 1.0)


def test_audit_passes_true_rows_and_names_every_false_claim(
    graph: neo4j.Driver, neo4j_settings: Settings
) -> None:
    """Issue 13: the audit checks each claim against the graph, and misses none planted here."""
    from graphdb import audit_explanations

    db = neo4j_settings.neo4j_database
    _tiny_graph(graph, db)
    wb = Writeback(graph, db, run_id="run-t", model="EASE")
    true = RecommendationRow(
        "u1",
        "s3",
        1,
        1.0,
        [
            Evidence("Song", "s1", "played", 0.5, named=True),
            Evidence("Genre", "g1", "genre_affinity", 0.3, named=True, share_of_plays=0.75),
            Evidence("Artist", "a1", "artist", 0.2, named=True),
        ],
        reason="Because you played “One” by The Band, 75% of your plays are Indie Rock, "
        "and it is by The Band.",
    )
    wb.recommendations([true])
    wb.affinities([("u1", "g1", 0.75, 3)])
    audit = audit_explanations(graph, db, run_id="run-t")
    assert (audit.users, audit.recommendations, audit.evidence) == (1, 1, 3)
    assert audit.ok and audit.pass_rate == 1.0, audit.violations
    rel, _, _ = graph.execute_query(
        "MATCH (:User {id: 'u1'})-[a:AFFINITY]->(:Genre {id: 'g1'}) RETURN properties(a) AS p",
        database_=db,
    )
    assert rel[0]["p"] == {"weight": 0.75, "plays": 3, "rank": 1, "run_id": "run-t"}

    false = RecommendationRow(
        "u2",
        "s1",
        1,
        1.0,
        [
            Evidence("Song", "s2", "played", 0.6, named=True),  # u2 never played s2
            Evidence("User", "u1", "similar_user", 0.4, named=True, songs_in_common=5),
        ],
        reason="Because you played “Two” and “Three”, and u1 (5 songs in common with you) "
        "plays it.",
    )
    wb.recommendations([false])
    wb.affinities([("u2", "g1", 0.9)])  # u2 plays only Jazz
    audit = audit_explanations(graph, db, run_id="run-t")
    assert audit.recommendations == 2 and audit.failed == 1 and audit.pass_rate == 0.5
    assert audit.affinity_failed_users == 1
    assert set(audit.counts) == {
        "evidence_false",
        "in_common_misstated",
        "quote_not_evidence",
        "affinity_not_share",
        "affinity_not_top",
    }, audit.violations
    assert audit.counts["evidence_false"] == 2  # the played song and the listener
    assert any("Three" in v for v in audit.violations["quote_not_evidence"])
