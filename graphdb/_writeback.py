"""Write recommendations, their evidence, similar songs and genre affinities back to Neo4j.

The graph model (see docs/graph-model.md)::

    (User)-[:RECEIVED]->(r:Recommendation {id, rank, score, run_id, model, created_at, reason})
    (r)-[:OF]->(Song)
    (r)-[:BECAUSE {weight, kind, rank, named, share_of_plays?, songs_in_common?}]
        ->(Song | User | Artist | Genre | Playlist)
    (User)-[:RECOMMENDED {score, rank, run_id, model, created_at}]->(Song)
    (Song)-[:SIMILAR_TO {score, rank, run_id}]->(Song)
    (User)-[:AFFINITY {weight (= share of plays), plays, rank, run_id}]->(Genre)
    (:ModelRun {id, model, active, ...metrics})

A user's previous recommendations are deleted and the new ones written in the same
transaction, batch by batch of users, so a reader never sees a user with half a run.
This module takes plain rows; computing them is the model's business (``gnn``).

:func:`audit_explanations` reads back what was written and checks every claim against the
graph (issue 13) with the same named statements a reader runs in Browser
(``explain/check_recommendations``, ``explain/genre_listening``).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import neo4j

from graphdb._driver import graph_errors
from graphdb._registry import get_registry

#: The labels evidence may point at, with the ``writeback/find_node_ids`` parameter of each.
EVIDENCE_LABELS: dict[str, str] = {
    "Song": "song_ids",
    "User": "user_ids",
    "Artist": "artist_ids",
    "Genre": "genre_ids",
    "Playlist": "playlist_ids",
}


@dataclass(frozen=True)
class Evidence:
    """One reason: a node of ``label`` with ``id``, its ``kind`` and ``weight``.

    ``named``: the recommendation's sentence names it. ``share_of_plays`` (``genre_affinity``)
    and ``songs_in_common`` (``similar_user``) are the facts the sentence states about it.
    """

    label: str
    id: str
    kind: str
    weight: float
    named: bool = False
    share_of_plays: float | None = None
    songs_in_common: int | None = None

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


_EVIDENCE_COLUMNS = (
    "rec", "node", "weight", "kind", "rank", "named", "share_of_plays", "songs_in_common"
)  # fmt: skip


def _evidence_columns(
    cols: dict[str, list[Any]], rec: int, node: int, rank: int, ev: Evidence
) -> None:
    """Append one ``BECAUSE`` edge, from the recommendation with internal id ``rec`` to the
    node with internal id ``node``."""
    cols["rec"].append(rec)
    cols["node"].append(node)
    cols["weight"].append(float(ev.weight))
    cols["kind"].append(ev.kind)
    cols["rank"].append(rank)
    cols["named"].append(bool(ev.named))
    cols["share_of_plays"].append(None if ev.share_of_plays is None else float(ev.share_of_plays))
    cols["songs_in_common"].append(None if ev.songs_in_common is None else int(ev.songs_in_common))


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

    def recommendations_from(
        self, chunks: Iterable[Sequence[RecommendationRow]], *, users: int | None = None
    ) -> WritebackResult:
        """:meth:`recommendations` of chunk after chunk, each written while the caller computes
        the next: ``chunks`` is consumed in the calling thread, the writes run one at a time,
        in order, in a background thread. Every user's rows must be in one chunk (a later
        chunk would replace them). ``users``: how many in all, for progress.

        Raises:
            ValueError: a user's rows are in two chunks.
        """
        t0 = time.perf_counter()
        result = WritebackResult()
        seen: set[str] = set()
        done = 0

        def add(future: Future[WritebackResult]) -> None:
            part = future.result()
            result.users += part.users
            result.recommendations += part.recommendations
            result.evidence += part.evidence

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="writeback") as pool:
            pending: deque[Future[WritebackResult]] = deque()
            for rows in chunks:
                mine = {r.user_id for r in rows}
                if not seen.isdisjoint(mine):
                    raise ValueError(
                        f"user {sorted(seen & mine)[0]!r} has rows in two chunks; a user's "
                        "rows must be written in one"
                    )
                seen |= mine
                pending.append(pool.submit(self._write, rows, done, users))
                done += len(mine)
                while len(pending) > 1:  # one chunk written while the next is computed
                    add(pending.popleft())
            while pending:
                add(pending.popleft())
        result.seconds = time.perf_counter() - t0
        return result

    def recommendations(self, rows: Sequence[RecommendationRow]) -> WritebackResult:
        """Replace the recommendations of every user that appears in ``rows``.

        One transaction per batch of users: the nodes the batch points at are resolved to
        internal ids first (``writeback/find_node_ids``), then the users' old recommendations
        are deleted and the new ones created, matched by those ids. A row whose user, song or
        evidence node is not in the graph writes nothing for it; the result counts what was
        written.
        """
        return self._write(rows, 0, None)

    def _write(
        self, rows: Sequence[RecommendationRow], done_before: int, total: int | None
    ) -> WritebackResult:
        """:meth:`recommendations`; progress counts ``done_before`` users already written, of
        ``total`` (default: this call's)."""
        t0 = time.perf_counter()
        by_user: dict[str, list[RecommendationRow]] = {}
        for r in rows:
            by_user.setdefault(r.user_id, []).append(r)
        users = list(by_user)
        result = WritebackResult()
        q = {
            name: self.reg.text(f"writeback/{name}")
            for name in (
                "find_node_ids", "delete_recommendations", "create_recommendations",
                "create_evidence",
            )
        }  # fmt: skip

        @neo4j.unit_of_work(metadata={"query": "writeback/create_recommendations"})
        def work(tx: neo4j.ManagedTransaction, batch: list[str]) -> tuple[int, int]:
            recs = [r for uid in batch for r in by_user[uid]]
            keys: dict[str, set[str]] = {"User": set(batch), "Song": set()}
            for r in recs:
                keys["Song"].add(r.song_id)
                for ev in r.evidence:
                    keys.setdefault(ev.label, set()).add(ev.id)
            nodes = self._node_ids(tx, q["find_node_ids"], keys)
            users_, songs = nodes["User"], nodes["Song"]
            tx.run(
                q["delete_recommendations"], users=[users_[u] for u in batch if u in users_]
            ).consume()
            # a row whose user or song is not in the graph is left out
            kept = [r for r in recs if r.user_id in users_ and r.song_id in songs]
            made = tx.run(
                q["create_recommendations"],
                id=[_rec_id(self.run_id, r.user_id, r.song_id) for r in kept],
                user=[users_[r.user_id] for r in kept],
                song=[songs[r.song_id] for r in kept],
                rank=[int(r.rank) for r in kept],
                score=[float(r.score) for r in kept],
                reason=[r.reason for r in kept],
                run_id=self.run_id,
                model=self.model,
                created_at=self.created_at,
            ).single(strict=True)
            rec_nid = dict(zip(made["rows"], made["nids"], strict=True))
            cols: dict[str, list[Any]] = {c: [] for c in _EVIDENCE_COLUMNS}
            for i, r in enumerate(kept):
                if i not in rec_nid:  # its user or song was deleted since they were found
                    continue
                for rank, ev in enumerate(r.evidence, start=1):
                    node = nodes[ev.label].get(ev.id)
                    if node is not None:
                        _evidence_columns(cols, rec_nid[i], node, rank, ev)
            n_ev = 0
            if cols["rec"]:
                done = tx.run(q["create_evidence"], **cols).consume()
                n_ev = done.counters.relationships_created
            return len(rec_nid), n_ev

        with graph_errors(), self.driver.session(database=self.database) as session:
            for i in range(0, len(users), self.users_per_batch):
                batch = users[i : i + self.users_per_batch]
                n_rec, n_ev = session.execute_write(work, batch)
                result.recommendations += n_rec
                result.evidence += n_ev
                self.progress(
                    "recommendations",
                    done_before + min(i + len(batch), len(users)),
                    total or len(users),
                )
        result.users = len(users)
        result.seconds = time.perf_counter() - t0
        return result

    @staticmethod
    def _node_ids(
        tx: neo4j.ManagedTransaction, statement: str, keys: dict[str, set[str]]
    ) -> dict[str, dict[str, int]]:
        """Internal ids, per label, of the nodes with these stable ids (those in the graph)."""
        found = tx.run(
            statement,
            **{param: sorted(keys.get(label, ())) for label, param in EVIDENCE_LABELS.items()},
        ).single(strict=True)
        return {
            label: {key: nid for key, nid in found[param.removesuffix("_ids") + "s"]}
            for label, param in EVIDENCE_LABELS.items()
        }

    def remove_recommendations(self, user_ids: Sequence[str]) -> None:
        """Delete these users' recommendations (every run), batch by batch."""
        q_find = self.reg.text("writeback/find_node_ids")
        q_del = self.reg.text("writeback/delete_recommendations")

        @neo4j.unit_of_work(metadata={"query": "writeback/delete_recommendations"})
        def work(tx: neo4j.ManagedTransaction, batch: list[str]) -> None:
            nodes = self._node_ids(tx, q_find, {"User": set(batch)})["User"]
            tx.run(q_del, users=list(nodes.values())).consume()

        with graph_errors(), self.driver.session(database=self.database) as session:
            for i in range(0, len(user_ids), self.users_per_batch):
                session.execute_write(work, list(user_ids[i : i + self.users_per_batch]))

    def _replace(
        self,
        name: str,
        owner: str,
        target: str,
        edges: list[tuple[str, str, dict[str, Any]]],
        phase: str,
    ) -> int:
        """Replace the ``name`` edges (``writeback/delete_<name>``, ``writeback/create_<name>``)
        of every ``owner`` node in ``edges`` (``(owner id, target id, properties)``, grouped by
        owner) with these; nodes are matched by internal id, resolved first in each
        transaction. Returns the edges created (none for a node not in the graph)."""
        grouped: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for e in edges:
            grouped.setdefault(e[0], []).append(e)
        owners = list(grouped)
        props = list(edges[0][2]) if edges else []
        q_find = self.reg.text("writeback/find_node_ids")
        q_del = self.reg.text(f"writeback/delete_{name}")
        q_new = self.reg.text(f"writeback/create_{name}")

        @neo4j.unit_of_work(metadata={"query": f"writeback/create_{name}"})
        def work(tx: neo4j.ManagedTransaction, batch: list[str]) -> int:
            mine = [e for o in batch for e in grouped[o]]
            keys: dict[str, set[str]] = {owner: set(batch)}
            keys.setdefault(target, set()).update(e[1] for e in mine)
            ids = self._node_ids(tx, q_find, keys)
            a_ids, b_ids = ids[owner], ids[target]
            tx.run(q_del, owners=[a_ids[o] for o in batch if o in a_ids]).consume()
            kept = [e for e in mine if e[0] in a_ids and e[1] in b_ids]
            cols = {p: [e[2][p] for e in kept] for p in props}
            done = tx.run(
                q_new,
                a=[a_ids[e[0]] for e in kept],
                b=[b_ids[e[1]] for e in kept],
                run_id=self.run_id,
                **cols,
            ).consume()
            return int(done.counters.relationships_created)

        step = max(1, 20_000 // max(1, len(edges) // max(1, len(owners))))
        created = 0
        with graph_errors(), self.driver.session(database=self.database) as session:
            for i in range(0, len(owners), step):
                created += session.execute_write(work, owners[i : i + step])
                self.progress(phase, min(i + step, len(owners)), len(owners))
        return created

    def similar_songs(self, rows: Sequence[tuple[str, str, float]]) -> int:
        """``(song_a, song_b, score)`` rows, ranked per song by descending score; replaces
        the songs' earlier ``SIMILAR_TO`` edges. Returns the edges written."""
        per: dict[str, list[tuple[str, float]]] = {}
        for a, b, s in rows:
            per.setdefault(a, []).append((b, s))
        edges = []
        for a, lst in per.items():
            lst.sort(key=lambda t: -t[1])
            edges += [(a, b, {"score": float(s), "rank": i + 1}) for i, (b, s) in enumerate(lst)]
        return self._replace("similar", "Song", "Song", edges, "similar")

    def affinities(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """``(user_id, genre_id, share_of_plays[, plays])`` rows: each user's listening per
        genre, replacing the user's earlier ``AFFINITY`` edges; ``rank`` 1 = highest share.
        Returns the edges written."""
        per: dict[str, list[tuple[str, float, int | None]]] = {}
        for row in rows:
            u, g, w = row[0], row[1], float(row[2])
            plays = int(row[3]) if len(row) > 3 and row[3] is not None else None
            per.setdefault(u, []).append((g, w, plays))
        edges = []
        for u in sorted(per):
            lst = sorted(per[u], key=lambda t: -t[1])
            edges += [
                (u, g, {"weight": w, "plays": n, "rank": i + 1}) for i, (g, w, n) in enumerate(lst)
            ]
        return self._replace("affinity", "User", "Genre", edges, "affinity")

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


# -- the truth audit --------------------------------------------------------------------------

#: How sentences state numbers (``gnn.explain._reasons`` writes them): "38% of your plays are X",
#: "... and 12% are Y"; "U00042 (12 songs in common with you)".
_SHARE = re.compile(r"(\d+)% (?:of your plays )?are (.+?)(?=, | and \d+% |\.$)")
_QUOTED = re.compile(r"“([^”]*)”")
#: The most pieces of evidence one sentence may name.
MAX_NAMED = 3


@dataclass
class ExplanationAudit:
    """What :func:`audit_explanations` found.

    ``violations`` maps each failed check to examples (``"user song: detail"``, at most
    ``examples`` each) and ``counts`` to how many times it failed. A recommendation passes
    when none of its checks fails; a user's ``AFFINITY`` passes when every edge is the user's
    share of plays and no genre played more is left out.
    """

    users: int = 0
    recommendations: int = 0
    evidence: int = 0
    failed: int = 0
    affinity_edges: int = 0
    affinity_failed_users: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def pass_rate(self) -> float:
        """Share of recommendations passing every check (1.0 when there are none)."""
        return 1.0 - self.failed / self.recommendations if self.recommendations else 1.0

    @property
    def ok(self) -> bool:
        return not self.counts

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "pass_rate": self.pass_rate, "ok": self.ok}


def _mentioned(text: str, name: str, quoted: bool) -> int:
    if quoted:
        return text.find(f"“{name}”")
    m = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)
    return m.start() if m else -1


def _check_reason(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """The sentence checks of one recommendation (from ``explain/check_recommendations``)."""
    text: str = rec["reason"] or ""
    ev: list[dict[str, Any]] = rec["evidence"]
    named = [e for e in ev if e["named"]]
    bad: list[tuple[str, str]] = []
    if not 1 <= len(named) <= MAX_NAMED:
        bad.append(("named_count", f"{len(named)} pieces named"))
        return bad
    first: tuple[int, float] | None = None
    for e in named:
        at = _mentioned(text, e["name"], e["label"] in ("Song", "Playlist"))
        if at < 0:
            bad.append(("named_not_in_sentence", f"{e['kind']} {e['name']!r}"))
        elif first is None or at < first[0]:
            first = (at, e["weight"])
    if first is not None and first[1] < max(e["weight"] for e in named):
        bad.append(("strongest_not_first", text))
    allowed = {e["name"] for e in named if e["label"] in ("Song", "Playlist")}
    for q in _QUOTED.findall(text):
        if q not in allowed:
            bad.append(("quote_not_evidence", q))
    affinity = {e["name"]: e for e in named if e["kind"] == "genre_affinity"}
    stated = {m.group(2): int(m.group(1)) for m in _SHARE.finditer(text)}
    for name, pct in stated.items():
        piece = affinity.get(name)
        share = (piece["fact"] or {}).get("share_of_plays") if piece else None
        if share is None or abs(pct - 100 * share) > 0.5 + 1e-9:
            bad.append(("share_misstated", f"{pct}% {name} (true: {share})"))
    for name in affinity:
        if name not in stated:
            bad.append(("share_not_stated", name))
    for e in named:
        if e["kind"] == "similar_user":
            n = (e["fact"] or {}).get("songs_in_common")
            said = re.search(rf"{re.escape(e['name'])} \((\d+) songs? in common", text)
            if said is None or n is None or int(said.group(1)) != n:
                bad.append(("in_common_misstated", f"{e['name']} (true: {n})"))
    # "by X": X is a named artist piece, or the artist of every named played song.
    played = [set(e["artists"]) for e in named if e["kind"] == "played"]
    artists = {e["name"] for e in named if e["kind"] == "artist"}
    if played:
        artists |= set.intersection(*played)
    bare = _QUOTED.sub("“”", text)
    for m in re.finditer(" by ", bare):
        if not any(bare.startswith(a, m.end()) for a in artists):
            bad.append(("by_artist_false", bare[m.end() : m.end() + 40]))
    return bad


def audit_explanations(
    driver: neo4j.Driver,
    database: str,
    *,
    run_id: str | None = None,
    examples: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> ExplanationAudit:
    """Check every written-back recommendation of ``run_id`` (default: all) against the graph.

    Per recommendation (``explain/check_recommendations``): it has ``BECAUSE`` evidence and a
    sentence; every piece holds (``played``: the user LISTENED to the song; ``similar_user``:
    that user LISTENED to the recommended song and shares songs with the user, as many as
    stated; ``artist``: the song is BY it; ``genre``: the song is IN_GENRE it; ``playlist``:
    it CONTAINS the song; ``genre_affinity``: a genre in the user's top 3 by plays or with at
    least 10% of them, its share as stated); the sentence names 1..3 pieces, all in
    ``BECAUSE``, the strongest named piece first, and every number it states is the graph's;
    it repeats the previous rank's sentence only for the same evidence. Per user
    (``explain/genre_listening``): ``AFFINITY`` weights are the user's shares of plays, and no
    genre played more than an ``AFFINITY`` genre is left out.
    """
    reg = get_registry()
    audit = ExplanationAudit()

    def fail(check: str, where: str, detail: str) -> None:
        audit.counts[check] = audit.counts.get(check, 0) + 1
        seen = audit.violations.setdefault(check, [])
        if len(seen) < examples:
            seen.append(f"{where}: {detail}")

    q_users = reg.text("writeback/list_recommended_users")
    q_recs = reg.text("explain/check_recommendations")
    q_genres = reg.text("explain/genre_listening")

    @neo4j.unit_of_work(metadata={"query": "writeback/list_recommended_users"})
    def list_users(tx: neo4j.ManagedTransaction) -> list[str]:
        return [r["user_id"] for r in tx.run(q_users, run_id=run_id)]

    @neo4j.unit_of_work(metadata={"query": "explain/check_recommendations"})
    def read_user(
        tx: neo4j.ManagedTransaction, uid: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return tx.run(q_recs, user_id=uid).data(), tx.run(q_genres, user_id=uid).data()

    with (
        graph_errors(),
        driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session,
    ):
        users = session.execute_read(list_users)
        audit.users = len(users)
        for done, uid in enumerate(users):
            recs, genres = session.execute_read(read_user, uid)
            recs = [r for r in recs if run_id is None or r["run_id"] == run_id]
            previous: dict[str, Any] | None = None
            for rec in recs:
                where = f"{uid} {rec['song_id']}"
                audit.recommendations += 1
                audit.evidence += len(rec["evidence"])
                bad: list[tuple[str, str]] = []
                if not rec["evidence"]:
                    bad.append(("evidence_missing", "no BECAUSE edges"))
                if not rec["reason"]:
                    bad.append(("reason_missing", "no sentence"))
                for e in rec["evidence"]:
                    if not e["holds"]:
                        bad.append(("evidence_false", f"{e['kind']} {e['name']!r}: {e['fact']}"))
                if rec["evidence"] and rec["reason"]:
                    bad += _check_reason(rec)
                if (
                    previous is not None
                    and previous["reason"] == rec["reason"]
                    and {(e["kind"], e["id"]) for e in previous["evidence"]}
                    != {(e["kind"], e["id"]) for e in rec["evidence"]}
                ):
                    bad.append(("repeated_sentence", rec["reason"] or ""))
                previous = rec
                for check, detail in bad:
                    fail(check, where, detail)
                audit.failed += bool(bad)
            affinity = [g for g in genres if g["affinity"] is not None]
            audit.affinity_edges += len(affinity)
            user_bad = False
            for g in affinity:
                if abs(g["affinity"] - g["share_of_plays"]) > 1e-6 or g["plays"] == 0:
                    detail = f"{g['genre']} {g['affinity']} vs {g['share_of_plays']}"
                    fail("affinity_not_share", uid, detail)
                    user_bad = True
            if affinity:
                lowest = min(g["plays"] for g in affinity)
                missing = [g for g in genres if g["affinity"] is None and g["plays"] > lowest]
                for g in missing:
                    fail("affinity_not_top", uid, f"{g['genre']} ({g['plays']} plays) left out")
                user_bad = user_bad or bool(missing)
            elif any(g["plays"] > 0 for g in genres) and recs:
                fail("affinity_missing", uid, "genre listening but no AFFINITY")
                user_bad = True
            audit.affinity_failed_users += user_bad
            if progress:
                progress(done + 1, len(users))
    return audit
