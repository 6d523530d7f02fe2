"""Named Cypher statements loaded from ``cypher/<area>/<verb_noun>.cypher``.

Every file opens with a header::

    // name: ingest/merge_songs
    // <one line of purpose>
    // params: $rows

and holds exactly one statement. Code asks the registry for a statement by name and gets a
``neo4j.Query`` carrying the name as metadata (visible in ``SHOW TRANSACTIONS`` and the query
log) and a timeout. Nothing builds Cypher text at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import neo4j

CYPHER_DIR = Path(__file__).resolve().parent.parent / "cypher"

_HEADER = re.compile(r"^//\s*name:\s*(?P<name>[\w/.-]+)\s*$")
_PARAMS = re.compile(r"^//\s*params:\s*(?P<params>.*)$")


@dataclass(frozen=True)
class Statement:
    """One named statement: its text, purpose, declared parameters and source file."""

    name: str
    text: str
    purpose: str
    params: tuple[str, ...]
    path: Path

    def query(self, timeout: float | None = None) -> neo4j.Query:
        return neo4j.Query(self.text, metadata={"query": self.name}, timeout=timeout)  # type: ignore[arg-type]


class QueryRegistry:
    """All statements under a folder, keyed by ``<area>/<verb_noun>``."""

    def __init__(self, root: Path = CYPHER_DIR, timeout: float | None = None):
        self.root = root
        self.timeout = timeout
        self._statements: dict[str, Statement] = {}
        for path in sorted(root.rglob("*.cypher")):
            stmt = parse_file(path, root)
            if stmt.name in self._statements:
                raise ValueError(f"duplicate statement name {stmt.name!r} in {path}")
            self._statements[stmt.name] = stmt

    def __getitem__(self, name: str) -> Statement:
        try:
            return self._statements[name]
        except KeyError:
            raise KeyError(f"no Cypher statement named {name!r} under {self.root}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._statements

    def names(self, area: str | None = None) -> list[str]:
        return [n for n in self._statements if area is None or n.startswith(area + "/")]

    def query(self, name: str) -> neo4j.Query:
        return self[name].query(self.timeout)

    def text(self, name: str) -> str:
        return self[name].text


def parse_file(path: Path, root: Path) -> Statement:
    """Parse one ``.cypher`` file and check its header against its location."""
    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines()
    if not lines or not (m := _HEADER.match(lines[0])):
        raise ValueError(f"{path}: first line must be '// name: <area>/<verb_noun>'")
    name = m.group("name")
    expected = path.relative_to(root).with_suffix("").as_posix()
    if name != expected:
        raise ValueError(f"{path}: header name {name!r} does not match its path {expected!r}")
    purpose = lines[1].lstrip("/ ").strip() if len(lines) > 1 and lines[1].startswith("//") else ""
    params: tuple[str, ...] = ()
    for line in lines[1:4]:
        if pm := _PARAMS.match(line):
            params = tuple(
                p.strip().lstrip("$") for p in pm.group("params").split(",") if p.strip()
            )
    body = "\n".join(ln for ln in lines if not ln.lstrip().startswith("//")).strip()
    body = body.rstrip(";").strip()
    if not body:
        raise ValueError(f"{path}: no statement")
    used = set(re.findall(r"\$(\w+)", body))
    if used != set(params):
        raise ValueError(f"{path}: params header {sorted(params)} != used {sorted(used)}")
    return Statement(name=name, text=body, purpose=purpose, params=params, path=path)


@lru_cache(maxsize=4)
def get_registry(root: Path = CYPHER_DIR) -> QueryRegistry:
    """The registry for ``root``, loaded once per process."""
    return QueryRegistry(root)
