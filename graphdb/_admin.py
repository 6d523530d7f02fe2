"""``neo4j-admin`` against the local server, and the stop it needs first.

Offline tools (``neo4j-admin database import full``) write store files directly and only into
the database of a *stopped* server. So this module runs the tool on the local server's own
Java and jars, reads its output back, stops the server reliably beforehand, and can leave an
empty database behind when a run failed half-way. What to import is the caller's business
(``ingest``); how to run the tool on our instance is this module's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from graphdb._server import ADMIN_TOOL, LocalServer, java_executable
from spotify_engine.errors import ServerError

log = logging.getLogger(__name__)

#: Lines of the tool's output :func:`admin_tool_output` returns by default.
OUTPUT_LINES = 12

_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ more)")
_EXCEPTION = re.compile(r"^Caused by: ([\w.$]+(Exception|Error): )*")


def run_admin_tool(
    server: LocalServer, args: Sequence[str], work: Path, stem: str, timeout_s: float | None
) -> int | None:
    """Run ``neo4j-admin <args>`` for this instance in ``work``; output in ``<stem>.out`` /
    ``<stem>.err`` there (read them with :func:`admin_tool_output`).

    The tool gets the server's heap as its ``-Xmx`` and the instance's home and config.

    Returns the exit code, or None when it ran past ``timeout_s`` (it is then killed).
    """
    java = java_executable(server.settings)
    env = dict(os.environ, NEO4J_HOME=str(server.home), NEO4J_CONF=str(server.conf_dir))
    cmd = [
        str(java),
        f"-Xmx{server.settings.heap_size}",
        "-cp",
        f"{server.lib_dir}/*",
        ADMIN_TOOL,
        *args,
    ]
    with (work / f"{stem}.out").open("wb") as out, (work / f"{stem}.err").open("wb") as err:
        try:
            proc = subprocess.run(
                cmd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=work,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
    return proc.returncode


def admin_tool_output(work: Path, stem: str, n: int = OUTPUT_LINES) -> tuple[str, str]:
    """The tool's reason (its innermost ``Caused by``, else its first line) and its last ``n``
    lines without stack frames: stderr, else stdout. ``("no output", "")`` when both are empty."""
    for suffix in (".err", ".out"):
        path = work / f"{stem}{suffix}"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and not _FRAME.match(ln)]
        if lines:
            causes = [ln for ln in lines if ln.startswith("Caused by:")]
            reason = _EXCEPTION.sub("", causes[-1]) if causes else lines[0]
            return reason.strip(), "\n".join(lines[-n:])
    return "no output", ""


def stop_and_wait(server: LocalServer, timeout_s: float = 120.0) -> None:
    """Stop the server and wait until it is gone, so that its store may be rewritten.

    Unlike ``LocalServer.stop`` this also returns when the process stays a zombie: a server
    started by another live process (a test session, say) is reaped only by that process, and
    psutil cannot wait for a zombie that is not its child.

    Raises:
        ServerError: still there ``timeout_s`` after SIGTERM and 30 s after SIGKILL.
    """
    pid = server.status().pid
    if pid is None:
        return
    try:
        proc = psutil.Process(pid)
        proc.terminate()
    except psutil.NoSuchProcess:
        return

    def gone(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                    return True
            except psutil.NoSuchProcess:
                return True
            time.sleep(0.2)
        return False

    if not gone(timeout_s):
        log.warning("Neo4j did not stop within %.0fs; killing it", timeout_s)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
        if not gone(30):
            raise ServerError(f"Neo4j (pid {pid}) did not stop; stop it and run again")
    server.pid_file.unlink(missing_ok=True)


def import_empty_database(server: LocalServer, database: str, work: Path) -> bool:
    """Replace a (half-written) store of the stopped server by an empty one, so that the server
    starts on a valid database. True when the tool succeeded (output in ``work/reset.*``)."""
    empty = work / "empty.csv"
    empty.write_text("id:ID(Empty)\n")
    args = ["database", "import", "full", database, "--overwrite-destination=true"]
    args += [f"--report-file={work / 'reset.report'}", f"--nodes={empty}"]
    return run_admin_tool(server, args, work, "reset", timeout_s=600) == 0
