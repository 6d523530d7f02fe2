"""The API as a background process: ``spotify-engine serve`` started, waited for and stopped.

The demo leaves the API running over the graph and runs it built. The process gets its own
session (so stopping it stops its uvicorn workers too) and a pid file and a log under
``<SPOTIFY_ENGINE_HOME>/demo/``, so that a later ``spotify-engine demo --stop`` finds it.
This module imports neither FastAPI nor the models: starting and stopping stay cheap.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from spotify_engine.errors import ConfigError
from spotify_engine.settings import Settings


def _api_files(s: Settings) -> tuple[Path, Path]:
    base = s.home.expanduser() / "demo"
    return base / "api.pid", base / "api.log"


def stop_api(s: Settings) -> bool:
    """Stop the API :func:`start_api` started (its pid file says which process); False if none
    ran."""
    pid_file, _ = _api_files(s)
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
        os.killpg(pid, signal.SIGTERM)
        stopped = True
    except (ValueError, ProcessLookupError, PermissionError):
        stopped = False
    pid_file.unlink(missing_ok=True)
    return stopped


def start_api(s: Settings, *, timeout: float = 120.0) -> str:
    """Start ``spotify-engine serve`` in the background on the same Neo4j and runs (stopping one
    started before); wait until ``/ready`` answers 200. Returns the base URL.

    Raises:
        ConfigError: the process exited while starting, or did not answer within ``timeout``
            (it is then stopped); the message names the log file.
    """
    import httpx

    stop_api(s)
    pid_file, log_file = _api_files(s)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    host, port = s.api_host, s.api_port
    url = f"http://{host}:{port}"
    env = {
        **os.environ,
        "SPOTIFY_ENGINE_RUNS_DIR": str(Path(s.runs_dir).resolve()),
        "SPOTIFY_ENGINE_BOLT_PORT": str(s.bolt_port),
        "SPOTIFY_ENGINE_HTTP_PORT": str(s.http_port),
    }
    if s.neo4j_uri:
        env["NEO4J_URI"] = s.neo4j_uri
        env["NEO4J_PASSWORD"] = s.password()
    if s.neo4j_home:
        env["SPOTIFY_ENGINE_NEO4J_HOME"] = str(s.neo4j_home)
    exe = Path(sys.executable).parent / "spotify-engine"
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(
                f"the API exited at start ({tail[0]})",
                hint=f"see {log_file}; is port {port} free? (SPOTIFY_ENGINE_API_PORT)",
            )
        try:
            if httpx.get(f"{url}/ready", timeout=2.0).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_api(s)
    raise ConfigError(
        f"the API did not answer on {url} within {timeout:.0f}s", hint=f"see {log_file}"
    )
