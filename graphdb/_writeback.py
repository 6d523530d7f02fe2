"""Write recommendations, their evidence, similar songs and genre affinities back to Neo4j.

The graph model (see docs/graph-model.md)::

    (User)-[:RECEIVED]->(r:Recommendation {id, rank, score, run_id, model, created_at, reason})
    (r)-[:OF]->(Song)
    (r)-[:BECAUSE {weight, kind, rank}]->(Song | User | Artist | Genre | Playlist)
    (User)-[:RECOMMENDED {score, rank, run_id, model, created_at}]->(Song)
    (Song)-[:SIMILAR_TO {score, rank, run_id}]->(Song)
    (User)-[:AFFINITY {weight, run_id}]->(Genre)
    (:ModelRun {id, model, active, ...metrics})

A user's previous recommendations are deleted and the new ones written in the same
transaction, batch by batch of users, so a reader never sees a user with half a run.
This module takes plain rows; computing them is the model's business (``gnn``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import neo4j

from graphdb._driver import graph_errors
from graphdb._registry import get_registry

EVIDENCE_LABELS: dict[str, str] = {
    "Song": "writeback/create_song_evidence",
    "User": "writeback/create_user_evidence",
    "Artist": "writeback/create_artist_evidence",
    "Genre": "writeback/create_genre_evidence",
    "Playlist": "writeback/create_playlist_evidence",
}


@dataclass(frozen=True)
class Evidence:
    """One reason: a node of ``label`` with ``id``, its ``kind`` and signed ``weight``."""

    label: str
    id: str
    kind: str
    weight: float

    def __post_init__(self) -> None:
        if self.label not in EVIDENCE_LABELS:
            raise ValueError(
                f"evidence label must be one of {sorted(EVIDENCE_LABELS)} (got {self.label!r})"
            )


@dataclass
class RecommendationRow:
    """One recommended song for one user, with its evidence (strongest first)."""

    user_id: str
    song_id: str
    rank: int
    score: float
    evidence: list[Evidence] = field(default_factory=list)
    reason: str | None = None


@dataclass
class WritebackResult:
    users: int = 0
    recommendations: int = 0
    evidence: int = 0
    similar: int = 0
    affinity: int = 0
    seconds: float = 0.0


def _rec_id(run_id: str, user_id: str, song_id: str) -> str:
    return f"{run_id}|{user_id}|{song_id}"


class Writeback:
    """Writes one run's results. Batches are groups of whole users.

    Args:
        driver: an open driver.
        database: database name.
        run_id: the run the rows belong to (``runs/<run_id>``).
        model: model name for provenance.
        users_per_batch: users per transaction.
    """

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str,
        *,
        run_id: str,
        model: str,
        users_per_batch: int = 500,
        progress: Callable[[str, int, int], None] | None = None,
    ):
        self.driver = driver
        self.database = database
        self.run_id = run_id
        self.model = model
        self.users_per_batch = users_per_batch
        self.reg = get_registry()
        self.created_at = int(time.time() * 1000)
        self.progress = progress or (lambda phase, done, total: None)

    def recommendations(self, rows: Sequence[RecommendationRow]) -> WritebackResult:
        """Replace the recommendations of every user that appears in ``rows``."""
        t0 = time.perf_counter()
        by_user: dict[str, list[RecommendationRow]] = {}
        for r in rows:
            by_user.setdefault(r.user_id, []).append(r)
        users = list(by_user)
        result = WritebackResult()
        q_del = self.reg.text("writeback/delete_recommendations")
        q_rec = self.reg.text("writeback/create_recommendations")

        @neo4j.unit_of_work(metadata={"query": "writeback/create_recommendations"})
        def work(tx: neo4j.ManagedTransaction, batch: list[str]) -> tuple[int, int]:
            rec_rows: list[dict[str, Any]] = []
            ev_rows: dict[str, list[dict[str, Any]]] = {label: [] for label in EVIDENCE_LABELS}
            for uid in batch:
                for r in by_user[uid]:
                    rid = _rec_id(self.run_id, r.user_id, r.song_id)
                    rec_rows.append(
                        {
                            "id": rid,
                            "user_id": r.user_id,
                            "song_id": r.song_id,
                            "rank": int(r.rank),
                            "score": float(r.score),
                            "reason": r.reason,
                        }
                    )
                    for i, ev in enumerate(r.evidence):
                        ev_rows[ev.label].append(
                            {
                                "rec_id": rid,
                                "id": ev.id,
                                "kind": ev.kind,
                                "weight": float(ev.weight),
                                "rank": i + 1,
                            }
                        )
            tx.run(q_del, user_ids=batch).consume()
            tx.run(
                q_rec,
                rows=rec_rows,
                run_id=self.run_id,
                model=self.model,
                created_at=self.created_at,
            ).consume()
            n_ev = 0
            for label, evs in ev_rows.items():
                if evs:
                    tx.run(self.reg.text(EVIDENCE_LABELS[label]), rows=evs).consume()
                    n_ev += len(evs)
            return len(rec_rows), n_ev

        with graph_errors(), self.driver.session(database=self.database) as session:
            for i in range(0, len(users), self.users_per_batch):
                batch = users[i : i + self.users_per_batch]
                n_rec, n_ev = session.execute_write(work, batch)
                result.recommendations += n_rec
                result.evidence += n_ev
                self.progress("recommendations", min(i + len(batch), len(users)), len(users))
        result.users = len(users)
        result.seconds = time.perf_counter() - t0
        return result

    def _replace(
        self,
        delete: str,
        create: str,
        key: str,
        owners: list[str],
        rows: list[dict[str, Any]],
        owner_field: str,
        phase: str,
    ) -> int:
        grouped: dict[str, list[dict[str, Any]]] = {o: [] for o in owners}
        for r in rows:
            grouped[r[owner_field]].append(r)
        q_del, q_new = self.reg.text(delete), self.reg.text(create)

        @neo4j.unit_of_work(metadata={"query": create})
        def work(tx: neo4j.ManagedTransaction, batch: list[str]) -> None:
            tx.run(q_del, **{key: batch}).consume()
            new_rows = [r for o in batch for r in grouped[o]]
            tx.run(q_new, rows=new_rows, run_id=self.run_id).consume()

        step = max(1, 20_000 // max(1, len(rows) // max(1, len(owners))))
        with graph_errors(), self.driver.session(database=self.database) as session:
            for i in range(0, len(owners), step):
                session.execute_write(work, owners[i : i + step])
                self.progress(phase, min(i + step, len(owners)), len(owners))
        return len(rows)

    def similar_songs(self, rows: Sequence[tuple[str, str, float]]) -> int:
        """``(song_a, song_b, score)`` rows, ranked per song by descending score."""
        per: dict[str, list[tuple[str, float]]] = {}
        for a, b, s in rows:
            per.setdefault(a, []).append((b, s))
        out = []
        for a, lst in per.items():
            lst.sort(key=lambda t: -t[1])
            out += [
                {"a": a, "b": b, "score": float(s), "rank": i + 1} for i, (b, s) in enumerate(lst)
            ]
        return self._replace(
            "writeback/delete_similar",
            "writeback/create_similar",
            "song_ids",
            list(per),
            out,
            "a",
            "similar",
        )

    def affinities(self, rows: Sequence[tuple[str, str, float]]) -> int:
        """``(user_id, genre_id, weight)`` rows."""
        users = sorted({u for u, _, _ in rows})
        out = [{"user_id": u, "genre_id": g, "weight": float(w)} for u, g, w in rows]
        return self._replace(
            "writeback/delete_affinity",
            "writeback/create_affinity",
            "user_ids",
            users,
            out,
            "user_id",
            "affinity",
        )

    def record_run(self, props: dict[str, Any]) -> None:
        """Store the run's provenance node and mark it active."""
        clean = {k: v for k, v in props.items() if isinstance(v, (str, int, float, bool))}
        clean.update({"model": self.model, "created_at": self.created_at})
        with graph_errors():
            self.driver.execute_query(
                self.reg.query("writeback/merge_model_run"),
                id=self.run_id,
                props=clean,
                database_=self.database,
            )
