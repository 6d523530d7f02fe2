"""The layout is the architecture: layers, public doors, no cycles (issue 17).

Pure AST checks over the source tree, no imports executed:

* layers: ground (``spotify_engine``) <- ``graphdb`` <- ``ingest`` <- ``gnn`` <- ``api`` <- ``cli``;
  a module imports only its own package and lower layers, and nothing imports ``cli`` (tests may
  launch or import it; they are not scanned);
* doors: no module imports ``<other package>._x`` (or ``<other>.<sub>._x``, or a ``_name`` from
  another package); benchmarks count as outside every package (their sibling helpers,
  ``benchmarks/_quality_*.py``, are loaded from their file path, which names no package);
* no import cycles, between the top-level packages or between the gnn subpackages, and inside
  ``gnn`` the subpackages keep to their order: graph <- core <- explain <- users, and
  graph <- core <- sessions, playlists;
* every package ``__init__`` opens with a docstring whose first line states its role;
* no test asserts something that cannot fail (``assert True``, ``len(x) >= 0``, ...).

Every import statement counts, including those inside functions and under ``TYPE_CHECKING``,
relative ones (resolved against the file) and ``importlib.import_module("...")`` with a literal.
Each checker is also fed a snippet with a violation, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("spotify_engine", "graphdb", "ingest", "gnn", "api", "cli")
SCANNED = (*LAYERS, "benchmarks")
#: Folders a package must never import: scripts and the test suite sit above every layer.
OUTSIDE = ("benchmarks", "tests")
#: gnn subpackage -> the gnn subpackages it may import (besides itself). The code today uses
#: core -> graph; explain -> graph; users -> graph, core, explain; sessions, playlists -> graph,
#: core. explain -> core is allowed by the order but unused.
GNN_ORDER: dict[str, set[str]] = {
    "graph": set(),
    "core": {"graph"},
    "explain": {"graph", "core"},
    "users": {"graph", "core", "explain"},
    "sessions": {"graph", "core"},
    "playlists": {"graph", "core"},
}


class Import(NamedTuple):
    line: int
    module: str  # absolute dotted module
    name: str | None = None  # the name taken by ``from module import name``

    @property
    def target(self) -> str:
        """The dotted path imported: ``gnn.users._models`` for ``from gnn.users import _models``."""
        return f"{self.module}.{self.name}" if self.name and self.name != "*" else self.module

    def __str__(self) -> str:
        if self.name is None:
            return f"import {self.module}"
        return f"from {self.module} import {self.name}"


def _package_of(rel: Path) -> list[str]:
    """The dotted package a file's relative imports start from."""
    return list(rel.parts[:-1])  # a module's package, or an ``__init__``'s own: its folder


def _imports(rel: Path, source: str) -> Iterator[Import]:
    """Every import in ``source`` (the file ``rel``), relative ones made absolute."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(rel)[: len(rel.parts) - node.level]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield Import(node.lineno, module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")
        ):
            yield Import(node.lineno, node.args[0].value)


def layer_violations(rel: Path, source: str) -> list[str]:
    owner = rel.parts[0]
    out: list[str] = []
    seen: set[tuple[int, str]] = set()
    for imp in _imports(rel, source):
        top = imp.module.split(".")[0]
        if top == owner or (imp.line, imp.module) in seen:
            continue
        seen.add((imp.line, imp.module))  # one line per statement, not per imported name
        if top == "cli":
            out.append(f"{rel}:{imp.line}: {imp} (the CLI is imported by nothing)")
        elif owner in LAYERS and top in OUTSIDE:
            out.append(f"{rel}:{imp.line}: {imp} ({top}/ is not a package to import)")
        elif owner in LAYERS and top in LAYERS and LAYERS.index(top) > LAYERS.index(owner):
            out.append(f"{rel}:{imp.line}: {imp} ({owner} may not import {top}, a higher layer)")
    return out


def private_violations(rel: Path, source: str) -> list[str]:
    owner = rel.parts[0]
    out = []
    for imp in _imports(rel, source):
        parts = imp.target.split(".")
        if parts[0] not in LAYERS or parts[0] == owner:
            continue
        if any(p.startswith("_") for p in parts[1:]):
            out.append(f"{rel}:{imp.line}: {imp} (private to {parts[0]}; make it public)")
    return out


def _gnn_sub(imp: Import) -> str | None:
    """The gnn subpackage an import reaches, ``""`` for the gnn root, None outside gnn."""
    parts = imp.target.split(".")
    if parts[0] != "gnn":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in GNN_ORDER else ""


def gnn_violations(rel: Path, source: str) -> list[str]:
    if len(rel.parts) < 3 or rel.parts[0] != "gnn":
        return []
    sub = rel.parts[1]
    allowed = GNN_ORDER.get(sub)
    if allowed is None:
        return [f"{rel}: gnn/{sub} is not in the gnn layer order"]
    out = []
    for imp in _imports(rel, source):
        other = _gnn_sub(imp)
        if other == "":
            out.append(f"{rel}:{imp.line}: {imp} (the gnn root, from inside gnn)")
        elif other is not None and other != sub and other not in allowed:
            out.append(f"{rel}:{imp.line}: {imp} (gnn.{sub} may not import gnn.{other})")
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in a directed graph as ``[a, b, ..., a]``, or None when it is a DAG."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def role_violation(rel: Path, source: str) -> str | None:
    """A package ``__init__`` opens with ``"<dotted name>: <its role>"`` on one line."""
    doc = ast.get_docstring(ast.parse(source))
    if not doc:
        return f"{rel}: no module docstring"
    name = ".".join(rel.parent.parts)
    first = doc.splitlines()[0]
    role = first.removeprefix(f"{name}: ")
    if role == first or len(role.split()) < 3 or len(first) > 100:
        return f"{rel}: first line {first!r} is not '{name}: <its role in one line>'"
    return None


def always_true_assertions(rel: Path, source: str) -> list[str]:
    """Assertions of the kinds that cannot fail: a constant, ``len(x) >= 0`` (or a count, a
    ``num_*()`` or ``*_count`` call), ``getattr(obj, name) is not None``."""

    def is_count(node: ast.expr) -> bool:
        if not isinstance(node, ast.Call):
            return False
        name = ast.unparse(node.func).split(".")[-1]
        return name in ("len", "count") or name.startswith("num_") or name.endswith("_count")

    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        tests = node.test.values if isinstance(node.test, ast.BoolOp) else [node.test]
        for t in tests:
            bad = isinstance(t, ast.Constant) and bool(t.value)
            if isinstance(t, ast.Compare) and len(t.ops) == 1:
                left, op, right = t.left, t.ops[0], t.comparators[0]
                zero = isinstance(right, ast.Constant) and right.value == 0
                bad |= isinstance(op, ast.GtE) and zero and is_count(left)
                bad |= (
                    isinstance(op, ast.IsNot)
                    and isinstance(right, ast.Constant)
                    and right.value is None
                    and isinstance(left, ast.Call)
                    and ast.unparse(left.func) == "getattr"
                    and len(left.args) == 2
                )
            if bad:
                out.append(f"{rel}:{node.lineno}: assert {ast.unparse(t)} cannot fail")
    return out


def _sources(tops: tuple[str, ...] = SCANNED) -> Iterator[tuple[Path, str]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT), path.read_text(encoding="utf-8")


def _import_graphs() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[tuple, str]]:
    """The packages' and the gnn subpackages' import graphs, and one import behind each arrow."""
    packages: dict[str, set[str]] = {p: set() for p in LAYERS}
    subs: dict[str, set[str]] = {s: set() for s in GNN_ORDER}
    where: dict[tuple, str] = {}
    for rel, src in _sources(LAYERS):
        owner = rel.parts[0]
        for imp in _imports(rel, src):
            top = imp.module.split(".")[0]
            if top in LAYERS and top != owner:
                packages[owner].add(top)
                where.setdefault((owner, top), f"{rel}:{imp.line}: {imp}")
            other = _gnn_sub(imp)
            if owner == "gnn" and len(rel.parts) > 2 and other and other != rel.parts[1]:
                subs.setdefault(rel.parts[1], set()).add(other)
                where.setdefault((rel.parts[1], other), f"{rel}:{imp.line}: {imp}")
    return packages, subs, where


# -- the tree -------------------------------------------------------------------------------------


def test_layers_point_down_and_nothing_imports_the_cli() -> None:
    bad = [v for rel, src in _sources() for v in layer_violations(rel, src)]
    assert bad == [], "\n".join(bad)


def test_no_module_imports_another_packages_private_modules() -> None:
    bad = [v for rel, src in _sources() for v in private_violations(rel, src)]
    assert bad == [], "\n".join(bad)


def test_gnn_subpackages_keep_their_order() -> None:
    subs = {p.name for p in (ROOT / "gnn").iterdir() if (p / "__init__.py").is_file()}
    assert subs == set(GNN_ORDER)
    assert find_cycle(GNN_ORDER) is None, "the allowed gnn order itself has a cycle"
    bad = [v for rel, src in _sources(("gnn",)) for v in gnn_violations(rel, src)]
    assert bad == [], "\n".join(bad)


def test_no_import_cycles_between_packages_or_gnn_subpackages() -> None:
    packages, subs, where = _import_graphs()
    for graph in (packages, subs):
        cycle = find_cycle(graph)
        arrows = [where[a, b] for a, b in zip(cycle or [], (cycle or [])[1:], strict=False)]
        assert cycle is None, f"import cycle {' -> '.join(cycle or [])}:\n" + "\n".join(arrows)
    assert packages["spotify_engine"] == set(), "the ground floor imports nothing of ours"
    assert not any("cli" in deps for deps in packages.values())


def test_every_package_states_its_role_in_one_line() -> None:
    inits = [ROOT / p / "__init__.py" for p in LAYERS]
    inits += sorted((ROOT / "gnn").glob("*/__init__.py"))
    assert len(inits) == len(LAYERS) + len(GNN_ORDER)
    bad = [
        v
        for init in inits
        if (v := role_violation(init.relative_to(ROOT), init.read_text(encoding="utf-8")))
    ]
    assert bad == [], "\n".join(bad)


def test_no_test_asserts_what_cannot_fail() -> None:
    bad = [v for rel, src in _sources(("tests",)) for v in always_true_assertions(rel, src)]
    assert bad == [], "\n".join(bad)


# -- the checkers catch what they are for ---------------------------------------------------------


def test_layer_checker_reports_violations() -> None:
    up = "def f():\n    from api import create_app\n"
    assert layer_violations(Path("gnn/users/_x.py"), up) == [
        "gnn/users/_x.py:2: from api import create_app (gnn may not import api, a higher layer)"
    ]
    assert layer_violations(Path("api/x.py"), "import cli\n") == [
        "api/x.py:1: import cli (the CLI is imported by nothing)"
    ]
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ingest\n"
    assert layer_violations(Path("graphdb/_d.py"), typed) == [
        "graphdb/_d.py:3: import ingest (graphdb may not import ingest, a higher layer)"
    ]
    lazy = "import importlib\nm = importlib.import_module('gnn.users')\n"
    assert layer_violations(Path("spotify_engine/s.py"), lazy)
    assert layer_violations(Path("benchmarks/b.py"), "from cli._demo import demo\n")
    assert layer_violations(Path("gnn/core/_r.py"), "from benchmarks import quality\n")
    assert layer_violations(Path("api/x.py"), "from gnn import evaluate\n") == []
    assert layer_violations(Path("benchmarks/b.py"), "from api import create_app\n") == []


def test_private_checker_reports_violations() -> None:
    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gnn.users._x import A\n"
    assert private_violations(Path("cli/_m.py"), hidden) == [
        "cli/_m.py:3: from gnn.users._x import A (private to gnn; make it public)"
    ]
    assert private_violations(Path("benchmarks/q.py"), "import ingest._bulk\n")
    assert private_violations(Path("api/x.py"), "from graphdb import _server\n")
    assert private_violations(Path("api/x.py"), "from gnn.core import _private_helper\n")
    assert private_violations(Path("api/x.py"), "__import__('graphdb._driver')\n")
    assert private_violations(Path("gnn/users/_p.py"), "from gnn.core._registry import x\n") == []
    assert private_violations(Path("gnn/users/_p.py"), "from ..core._registry import x\n") == []
    assert private_violations(Path("api/x.py"), "from __future__ import annotations\n") == []
    assert private_violations(Path("benchmarks/q.py"), "import _quality_session\n") == []


def test_gnn_checker_reports_violations() -> None:
    assert gnn_violations(Path("gnn/graph/_d.py"), "from gnn.users._models import M\n") == [
        "gnn/graph/_d.py:1: from gnn.users._models import M (gnn.graph may not import gnn.users)"
    ]
    assert gnn_violations(Path("gnn/graph/_d.py"), "from ..users import M\n")
    assert gnn_violations(Path("gnn/graph/_d.py"), "from gnn import users\n")
    assert gnn_violations(Path("gnn/sessions/_p.py"), "from gnn.playlists import P\n")
    assert gnn_violations(Path("gnn/core/_h.py"), "import gnn\n")
    assert gnn_violations(Path("gnn/users/_p.py"), "from gnn.explain import A\n") == []
    assert gnn_violations(Path("gnn/users/_p.py"), "from . import _models\n") == []


def test_relative_imports_resolve_against_the_file() -> None:
    found = list(_imports(Path("gnn/users/_p.py"), "from ..core import x\nfrom . import _m\n"))
    assert [i.target for i in found] == ["gnn.core.x", "gnn.users._m"]
    found = list(_imports(Path("gnn/users/__init__.py"), "from ._p import y\n"))
    assert [i.target for i in found] == ["gnn.users._p.y"]


def test_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_role_checker_reports_violations() -> None:
    rel = Path("gnn/core/__init__.py")
    assert role_violation(rel, "import x\n") == "gnn/core/__init__.py: no module docstring"
    assert role_violation(rel, '"""Shared things."""\n')
    assert role_violation(rel, '"""gnn.core: shared."""\n')  # a word is not a role
    assert role_violation(rel, '"""gnn.graph: the graph as the models see it."""\n')
    assert role_violation(rel, f'"""gnn.core: {"very " * 30}long."""\n')
    assert role_violation(rel, '"""gnn.core: what every task shares.\n\nMore."""\n') is None


def test_always_true_checker_reports_violations() -> None:
    src = (
        "def test_x(m, obj):\n"
        "    assert True\n"
        "    assert m.num_parameters() >= 0\n"
        "    assert len(m.items) >= 0 and m.ok\n"
        "    assert getattr(obj, 'name') is not None\n"
        "    assert m.num_parameters() == 12\n"
        "    assert getattr(obj, 'name', None) is not None\n"
        "    assert (m.ids >= 0).all()\n"
    )
    assert always_true_assertions(Path("tests/test_x.py"), src) == [
        "tests/test_x.py:2: assert True cannot fail",
        "tests/test_x.py:3: assert m.num_parameters() >= 0 cannot fail",
        "tests/test_x.py:4: assert len(m.items) >= 0 cannot fail",
        "tests/test_x.py:5: assert getattr(obj, 'name') is not None cannot fail",
    ]
