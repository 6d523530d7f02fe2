"""The Cypher registry: one named, parameterised statement per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphdb import CYPHER_DIR, QueryRegistry


def test_every_statement_is_named_after_its_file_and_declares_params() -> None:
    reg = QueryRegistry(CYPHER_DIR)
    names = reg.names()
    assert "db/ping" in names and "schema/create_user_id" in names
    for name in names:
        stmt = reg[name]
        assert stmt.path.relative_to(CYPHER_DIR).with_suffix("").as_posix() == name
        assert stmt.purpose, f"{name} has no purpose line"
        q = reg.query(name)
        assert q.metadata == {"query": name}


def test_bad_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    f = tmp_path / "a" / "do_thing.cypher"
    f.write_text("// name: a/other\n// purpose\n// params:\nRETURN 1\n")
    with pytest.raises(ValueError, match="does not match"):
        QueryRegistry(tmp_path)
    f.write_text("// name: a/do_thing\n// purpose\n// params: $x\nRETURN $y\n")
    with pytest.raises(ValueError, match="params"):
        QueryRegistry(tmp_path)
    f.write_text("RETURN 1\n")
    with pytest.raises(ValueError, match="first line"):
        QueryRegistry(tmp_path)


def test_unknown_statement_names_the_name() -> None:
    with pytest.raises(KeyError, match="nope/none"):
        QueryRegistry(CYPHER_DIR)["nope/none"]


def test_no_cypher_text_in_python_modules() -> None:
    """Cypher lives in cypher/*.cypher; library code only names statements."""
    root = CYPHER_DIR.parent
    offenders = []
    for pkg in ("graphdb", "ingest", "gnn", "api", "spotify_engine", "cli"):
        for py in (root / pkg).rglob("*.py"):
            text = py.read_text()
            for kw in ("MATCH (", "MERGE (", "UNWIND $", "DETACH DELETE"):
                if kw in text:
                    offenders.append(f"{py.relative_to(root)}: {kw}")
    assert not offenders, offenders
