"""Issue 17: every Neo4j driver comes from graphdb, and none prints server notifications.

``train`` on a graph of 20,000 users printed the driver's deprecation warning for ``id()``
(kept in ``cypher/export``: integer ids are cheaper to move than ``elementId`` strings) 26
times. ``graphdb.connect`` / ``connect_async`` turn server notifications off; these tests
check that no other module builds a driver, and that an export statement run through them
stays silent while a plain driver does warn.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

import neo4j
import pytest

from graphdb import connect_async, get_registry
from spotify_engine.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
#: Where code may live that must not build its own driver (the tests may, for a control).
SCANNED = ("spotify_engine", "graphdb", "ingest", "gnn", "api", "cli", "benchmarks")
_FACTORIES = {"GraphDatabase", "AsyncGraphDatabase"}
#: A statement of ours that uses the deprecated ``id()``.
EXPORT = "export/list_genres"


def _driver_calls(path: Path) -> list[str]:
    """``GraphDatabase.driver(...)`` / ``AsyncGraphDatabase.driver(...)`` calls and imports of
    those factories (through which a call could hide under another name), as ``path:line``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if node.func.attr == "driver" and name in _FACTORIES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("neo4j")
            and any(alias.name in _FACTORIES for alias in node.names)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_graphdb_builds_drivers() -> None:
    offenders = []
    for pkg in SCANNED:
        for py in sorted((ROOT / pkg).rglob("*.py")):
            if pkg != "graphdb":
                offenders += _driver_calls(py)
    assert not offenders, f"build drivers with graphdb.connect / connect_async: {offenders}"


def test_the_scan_sees_the_factories() -> None:
    """The scan is not blind: it finds graphdb's own two calls."""
    found = _driver_calls(ROOT / "graphdb" / "_driver.py")
    assert len(found) == 2, found


def _silent(caplog: pytest.LogCaptureFixture, run: Any) -> tuple[list[str], list[str], Any]:
    """Run ``run()`` and return the ``neo4j.notifications`` log lines, the warnings and its
    summary."""
    caplog.clear()
    with (
        caplog.at_level(logging.DEBUG, logger="neo4j.notifications"),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        summary = run()
    logged = [r.getMessage() for r in caplog.records if r.name == "neo4j.notifications"]
    return logged, [str(w.message) for w in caught], summary


def _notifications(summary: neo4j.ResultSummary) -> list[str]:
    return [g.status_description for g in summary.gql_status_objects if g.is_notification]


@pytest.mark.neo4j
def test_export_statement_with_id_is_silent_through_graphdb(
    neo4j_settings: Settings, driver: neo4j.Driver, caplog: pytest.LogCaptureFixture
) -> None:
    """``driver`` is the conftest's, from ``graphdb.connect``."""
    reg = get_registry()
    assert "id(" in reg.text(EXPORT)
    db = neo4j_settings.neo4j_database

    def sync_run(drv: neo4j.Driver) -> neo4j.ResultSummary:
        return drv.execute_query(reg.query(EXPORT), missing=0.0, database_=db).summary

    async def async_run() -> neo4j.ResultSummary:
        async with connect_async(neo4j_settings) as drv:
            result = await drv.execute_query(reg.query(EXPORT), missing=0.0, database_=db)
            return result.summary

    # Control: a driver with the library's defaults does report the deprecation.
    plain = neo4j.GraphDatabase.driver(
        neo4j_settings.uri, auth=(neo4j_settings.neo4j_user, neo4j_settings.password())
    )
    with plain:
        logged, _, summary = _silent(caplog, lambda: sync_run(plain))
    assert _notifications(summary) and logged, "the server no longer deprecates id()"

    for run in (lambda: sync_run(driver), lambda: asyncio.run(async_run())):
        logged, caught, summary = _silent(caplog, run)
        assert logged == [] and caught == [] and _notifications(summary) == []
