"""The layout is the architecture: layers, public doors, no cycles (issue 17).

Pure AST checks over the source tree, no imports executed:

* layers: ground (``spotify_engine``) <- ``graphdb`` <- ``ingest`` <- ``gnn`` <- ``api`` <- ``cli``;
  a module imports only its own package and lower layers, and nothing imports ``cli``;
* doors: no module imports ``<other package>._x`` (or ``<other>.<sub>._x``); benchmarks count as
  outside every package;
* inside ``gnn`` the subpackages form a DAG: graph <- core <- explain <- users, sessions, playlists;
* every package ``__init__`` opens with a docstring whose first line states its role.

Each checker is also fed a snippet with a violation, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("spotify_engine", "graphdb", "ingest", "gnn", "api", "cli")
SCANNED = (*LAYERS, "benchmarks")
#: gnn subpackage -> the gnn subpackages it may import (besides itself).
GNN_ORDER: dict[str, set[str]] = {
    "graph": set(),
    "core": {"graph"},
    "explain": {"graph", "core"},
    "users": {"graph", "core", "explain"},
    "sessions": {"graph", "core"},
    "playlists": {"graph", "core"},
}


def _imports(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import, including those inside functions and under
    ``TYPE_CHECKING``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _owner(rel: Path) -> str:
    return rel.parts[0]


def layer_violations(rel: Path, source: str) -> list[str]:
    owner = _owner(rel)
    out = []
    for line, module in _imports(source):
        top = module.split(".")[0]
        if top not in LAYERS or top == owner:
            continue
        if top == "cli":
            out.append(f"{rel}:{line}: imports {module} (the CLI is imported by nothing)")
        elif owner in LAYERS and LAYERS.index(top) > LAYERS.index(owner):
            out.append(f"{rel}:{line}: {owner} imports {module}, a higher layer")
    return out


def private_violations(rel: Path, source: str) -> list[str]:
    owner = _owner(rel)
    out = []
    for line, module in _imports(source):
        parts = module.split(".")
        if parts[0] not in LAYERS or parts[0] == owner:
            continue
        if any(p.startswith("_") for p in parts[1:]):
            out.append(f"{rel}:{line}: imports private {module}")
    return out


def gnn_violations(rel: Path, source: str) -> list[str]:
    if len(rel.parts) < 3 or rel.parts[0] != "gnn":
        return []
    sub = rel.parts[1]
    allowed = GNN_ORDER.get(sub)
    if allowed is None:
        return [f"{rel}: gnn/{sub} is not in the gnn layer order"]
    out = []
    for line, module in _imports(source):
        parts = module.split(".")
        if parts[0] != "gnn":
            continue
        if len(parts) == 1:
            out.append(f"{rel}:{line}: imports the gnn package root from inside gnn")
        elif parts[1] != sub and parts[1] not in allowed:
            out.append(f"{rel}:{line}: gnn.{sub} imports {module}")
    return out


def _sources() -> Iterator[tuple[Path, str]]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT), path.read_text(encoding="utf-8")


def test_layers_point_down_and_nothing_imports_the_cli() -> None:
    bad = [v for rel, src in _sources() for v in layer_violations(rel, src)]
    assert bad == [], "\n".join(bad)


def test_no_module_imports_another_packages_private_modules() -> None:
    bad = [v for rel, src in _sources() for v in private_violations(rel, src)]
    assert bad == [], "\n".join(bad)


def test_gnn_subpackages_form_a_dag() -> None:
    subs = {p.name for p in (ROOT / "gnn").iterdir() if (p / "__init__.py").is_file()}
    assert subs == set(GNN_ORDER)
    bad = [v for rel, src in _sources() for v in gnn_violations(rel, src)]
    assert bad == [], "\n".join(bad)
    # The allowed order itself has no cycle (a topological sort consumes every node).
    left = {k: set(v) for k, v in GNN_ORDER.items()}
    while left:
        free = [k for k, deps in left.items() if not deps & set(left)]
        assert free, f"cycle among {sorted(left)}"
        for k in free:
            del left[k]


def test_every_package_states_its_role_in_one_line() -> None:
    inits = [ROOT / p / "__init__.py" for p in LAYERS]
    inits += sorted((ROOT / "gnn").glob("*/__init__.py"))
    for init in inits:
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        rel = init.relative_to(ROOT)
        assert doc, f"{rel} has no docstring"
        name = ".".join(rel.parent.parts)
        first = doc.splitlines()[0]
        assert first.startswith(f"{name}: ") and len(first) <= 100, f"{rel}: {first!r}"


# -- the checkers catch what they are for ------------------------------------------------------


def test_checkers_report_violations() -> None:
    up = "def f():\n    from api import create_app\n"
    assert layer_violations(Path("gnn/users/_x.py"), up) == [
        "gnn/users/_x.py:2: gnn imports api, a higher layer"
    ]
    assert layer_violations(Path("api/x.py"), "import cli\n") == [
        "api/x.py:1: imports cli (the CLI is imported by nothing)"
    ]
    assert layer_violations(Path("benchmarks/b.py"), "from cli._demo import demo\n")
    assert layer_violations(Path("api/x.py"), "from gnn import evaluate\n") == []

    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gnn.users._x import A\n"
    assert private_violations(Path("cli/_m.py"), hidden) == [
        "cli/_m.py:3: imports private gnn.users._x"
    ]
    assert private_violations(Path("benchmarks/q.py"), "import ingest._bulk\n")
    assert private_violations(Path("gnn/users/_p.py"), "from gnn.core._registry import x\n") == []
    assert private_violations(Path("api/x.py"), "from __future__ import annotations\n") == []

    assert gnn_violations(Path("gnn/graph/_d.py"), "from gnn.users._models import M\n") == [
        "gnn/graph/_d.py:1: gnn.graph imports gnn.users._models"
    ]
    assert gnn_violations(Path("gnn/core/_h.py"), "import gnn\n")
    assert gnn_violations(Path("gnn/users/_p.py"), "from gnn.explain import A\n") == []
