"""Realism and consistency checks on what is in the graph, each a measured value and a bar.

Why these: the loader keeps aggregates (``LISTENED``, ``FOLLOWED_BY``) next to the raw plays
(``Session-[:PLAYED]->Song``) it derived them from. If a session were ever written twice or a
chunk half applied, the aggregates would drift from the plays; recounting them from the plays
is what shows that every play landed exactly once. The other checks catch data that loads
without error but cannot be right (songs without an artist, orphan sessions, a flat genre
distribution that no real listening log has).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import neo4j

from graphdb import get_registry, graph_errors, graph_stats

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

#: Plays of the most played genre over the median genre's: real logs are far above this.
LONG_TAIL_RATIO = 3.0
#: Songs whose outgoing transitions are recounted (all of them in a small graph).
SAMPLE_SONGS = 2000
#: The check that no sessions wait for their aggregates (a load stopped between a chunk's two
#: transactions, see ``ingest/_loader.py``).
PENDING = "no sessions wait for aggregates"


@dataclass(frozen=True)
class Check:
    """One check: PASS, FAIL or SKIP (not applicable), what was measured, against what."""

    name: str
    status: str
    value: float
    threshold: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _one(driver: neo4j.Driver, database: str, name: str, **params: Any) -> dict[str, Any]:
    with graph_errors():
        records, _, _ = driver.execute_query(
            get_registry().query(name),
            params,
            database_=database,
            routing_=neo4j.RoutingControl.READ,
        )
    return records[0].data()


def _zero(name: str, bad: int, of: int, what: str, examples: list[Any]) -> Check:
    detail = f"{bad:,} of {of:,} {what}"
    if bad and examples:
        detail += f"; e.g. {examples[0]}"
    return Check(name, FAIL if bad else PASS, float(bad), "== 0", detail)


def validate_graph(
    driver: neo4j.Driver,
    database: str,
    *,
    sample_songs: int = SAMPLE_SONGS,
    examples: int = 3,
) -> list[Check]:
    """Run every check (read-only) and return them in a fixed order.

    Args:
        driver: an open driver.
        database: database name.
        sample_songs: how many songs (by id) get their ``FOLLOWED_BY`` counts recounted.
        examples: offending ids or pairs kept per check, for the detail text.
    """
    if sample_songs < 1:
        raise ValueError(f"sample_songs must be >= 1 (got {sample_songs})")
    stats = graph_stats(driver, database)
    plays = stats.relationships.get("PLAYED", 0)
    checks: list[Check] = []

    r = _one(driver, database, "validate/count_songs_without_artist", examples=examples)
    if r["songs"]:
        checks.append(
            _zero("every song has an artist", r["bad"], r["songs"], "songs lack one", r["examples"])
        )
    else:
        checks.append(Check("every song has an artist", SKIP, 0.0, "== 0", "no songs"))

    r = _one(driver, database, "validate/count_users_without_plays", examples=examples)
    if plays and r["users"]:
        checks.append(
            _zero("every user has plays", r["bad"], r["users"], "users have none", r["examples"])
        )
    else:
        checks.append(Check("every user has plays", SKIP, 0.0, "== 0", "no plays in the graph"))

    checks.append(_long_tail(_one(driver, database, "validate/list_genre_plays")["genres"]))

    if not plays:
        for name in (
            "LISTENED.plays = PLAYED count",
            "FOLLOWED_BY.count = consecutive plays",
            "session positions are 0..n-1",
            "no orphan sessions",
            PENDING,
        ):
            checks.append(Check(name, SKIP, 0.0, "== 0", "no plays in the graph"))
        return checks

    r = _one(driver, database, "validate/compare_listened_played", examples=examples)
    checks.append(
        _zero(
            "LISTENED.plays = PLAYED count",
            r["bad"],
            r["pairs"],
            "user-song pairs disagree",
            r["examples"],
        )
    )
    r = _one(
        driver, database, "validate/compare_followed_by", limit=sample_songs, examples=examples
    )
    check = _zero(
        "FOLLOWED_BY.count = consecutive plays",
        r["bad"],
        r["pairs"],
        "transitions disagree",
        r["examples"],
    )
    checks.append(
        Check(
            check.name,
            check.status,
            check.value,
            check.threshold,
            f"{check.detail} (songs checked: {r['songs']:,})",
        )
    )
    r = _one(driver, database, "validate/check_session_positions", examples=examples)
    checks.append(
        _zero(
            "session positions are 0..n-1",
            r["bad"],
            r["sessions"],
            "sessions are off",
            r["examples"],
        )
    )
    r = _one(driver, database, "validate/count_orphan_sessions", examples=examples)
    checks.append(
        _zero(
            "no orphan sessions", r["bad"], r["sessions"], "sessions lack one user", r["examples"]
        )
    )
    r = _one(driver, database, "validate/count_pending_sessions", examples=examples)
    check = _zero(PENDING, r["sessions"], stats.labels.get("Session", 0), "sessions", r["examples"])
    if r["sessions"]:
        check = Check(
            check.name,
            check.status,
            check.value,
            check.threshold,
            f"{check.detail} ({r['markers']} chunks of a load that stopped before adding their "
            "aggregates; any ingest adds them first)",
        )
    checks.append(check)
    return checks


def _long_tail(genres: list[dict[str, Any]]) -> Check:
    name = "genre plays are long-tailed"
    threshold = f">= {LONG_TAIL_RATIO:g} (top / median genre)"
    played = sorted((float(g["plays"]) for g in genres if g["plays"]), reverse=True)
    if len(played) < 3:
        return Check(name, SKIP, 0.0, threshold, f"{len(played)} genres with plays (need 3)")
    median = statistics.median(played)
    ratio = played[0] / median
    total = sum(played)
    top = next(g for g in genres if g["plays"])
    detail = (
        f"top {top['name']!s} has {played[0] / total:.1%} of plays, "
        f"median genre {median / total:.1%} ({len(played)} genres)"
    )
    return Check(name, PASS if ratio >= LONG_TAIL_RATIO else FAIL, ratio, threshold, detail)
