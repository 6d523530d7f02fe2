"""Neo4j in Docker, through the repository's ``docker-compose.yml``, where a Docker engine runs.

The demo prefers this route when ``docker info`` answers (``SPOTIFY_ENGINE_NEO4J_BACKEND=auto``,
the default) and falls back to the locally assembled server otherwise. The container gets a
generated password, kept like the local server's in a 0600 file, and the same heap, page
cache and ports as the local server would.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from spotify_engine.errors import ConfigError, ServerStartFailed
from spotify_engine.settings import Settings

log = logging.getLogger(__name__)

#: The compose file of a source checkout (the project root holds it).
COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def docker_available(timeout: float = 10.0) -> bool:
    """True when a ``docker`` client is on PATH and its engine answers ``docker info``."""
    if not shutil.which("docker"):
        return False
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def neo4j_backend(settings: Settings) -> str:
    """Which Neo4j a command runs against: ``external`` (NEO4J_URI set), ``docker`` (asked for,
    or ``auto`` and Docker answers) or ``local`` (the server assembled from Maven Central)."""
    if not settings.uses_local_server:
        return "external"
    if settings.neo4j_backend == "docker" or (
        settings.neo4j_backend == "auto" and docker_available()
    ):
        return "docker"
    return "local"


class ComposeNeo4j:
    """``docker compose up/stop`` of the ``neo4j`` service, and the settings to reach it."""

    def __init__(self, settings: Settings, compose_file: Path = COMPOSE_FILE) -> None:
        self.settings = settings
        self.compose_file = compose_file
        self.password_file = settings.home.expanduser() / "docker-neo4j" / "password"

    def password(self) -> str:
        """The container's password: ``NEO4J_PASSWORD`` if set, else generated once and kept."""
        if self.settings.neo4j_password:
            return self.settings.neo4j_password
        if self.password_file.exists():
            return self.password_file.read_text(encoding="utf-8").strip()
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        pw = secrets.token_urlsafe(18)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(pw + "\n")
        return pw

    def environment(self) -> dict[str, str]:
        """What ``docker-compose.yml`` reads: password, memory and ports."""
        s = self.settings
        return {
            "NEO4J_PASSWORD": self.password(),
            "NEO4J_HEAP": s.heap_size,
            "NEO4J_PAGECACHE": s.pagecache_size,
            "NEO4J_BOLT_PORT": str(s.bolt_port),
            "NEO4J_HTTP_PORT": str(s.http_port),
        }

    def command(self, *args: str) -> list[str]:
        return ["docker", "compose", "-f", str(self.compose_file), *args]

    def _compose(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        if not self.compose_file.is_file():
            raise ConfigError(
                f"no {self.compose_file.name} at {self.compose_file.parent}",
                hint="run from a source checkout, or set SPOTIFY_ENGINE_NEO4J_BACKEND=local",
            )
        env = {**os.environ, **self.environment()}
        try:
            return subprocess.run(
                self.command(*args),
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerStartFailed(f"docker compose {args[0]} failed: {exc}") from exc

    def up(self) -> None:
        """Start (or keep) the container and wait until its health check passes."""
        proc = self._compose(
            "up", "-d", "--wait", "neo4j", timeout=self.settings.start_timeout_s + 300
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServerStartFailed(
                f"docker compose up neo4j failed: {tail[0]}",
                hint="see `docker compose logs neo4j`, or set SPOTIFY_ENGINE_NEO4J_BACKEND=local",
            )
        log.info("neo4j container up on bolt port %s", self.settings.bolt_port)

    def stop(self) -> bool:
        """Stop the container (its data volume stays); False when compose failed."""
        proc = self._compose("stop", "neo4j", timeout=120)
        return proc.returncode == 0

    def connection_settings(self) -> Settings:
        """The same settings, pointed at the container."""
        return self.settings.model_copy(
            update={
                "neo4j_uri": f"bolt://localhost:{self.settings.bolt_port}",
                "neo4j_password": self.password(),
            }
        )
