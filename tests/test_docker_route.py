"""The demo's Docker route: backend choice, the compose command, its environment and errors.

No Docker engine runs on our machines, so a stand-in ``docker`` executable on PATH records
what it was asked; where an engine exists, the conftest's testcontainers route and
``docker compose`` itself exercise the real thing.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from graphdb import ComposeNeo4j, docker_available, neo4j_backend
from graphdb._docker import COMPOSE_FILE
from spotify_engine.errors import ConfigError, ServerStartFailed
from spotify_engine.settings import Settings

RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["DOCKER_LOG"], "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items()
                         if k.startswith("NEO4J_")}}) + "\\n")
if os.environ.get("DOCKER_FAIL"):
    print("Error response from daemon: pull access denied", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "docker"
    exe.write_text(RECORDER)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("DOCKER_LOG", str(log))
    return log


def _settings(tmp_path: Path, **kw) -> Settings:
    kw = {"neo4j_uri": None, "neo4j_password": None, "neo4j_backend": "auto", **kw}
    return Settings(home=tmp_path / "home", bolt_port=27001, http_port=27002, **kw)


def test_backend_choice(tmp_path: Path, fake_docker: Path, monkeypatch) -> None:
    assert neo4j_backend(_settings(tmp_path, neo4j_uri="bolt://db:7687")) == "external"
    assert neo4j_backend(_settings(tmp_path, neo4j_backend="local")) == "local"
    assert neo4j_backend(_settings(tmp_path)) == "docker"  # the stand-in answers `docker info`
    monkeypatch.setenv("DOCKER_FAIL", "1")
    assert not docker_available()
    assert neo4j_backend(_settings(tmp_path)) == "local"
    assert neo4j_backend(_settings(tmp_path, neo4j_backend="docker")) == "docker"


def test_no_docker_on_path_means_local(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not docker_available()
    assert neo4j_backend(_settings(tmp_path)) == "local"


def test_up_passes_password_memory_and_ports(tmp_path: Path, fake_docker: Path) -> None:
    s = _settings(tmp_path, heap_size="2g", pagecache_size="512m")
    compose = ComposeNeo4j(s)
    compose.up()
    call = json.loads(fake_docker.read_text().splitlines()[-1])
    assert call["argv"] == ["compose", "-f", str(COMPOSE_FILE), "up", "-d", "--wait", "neo4j"]
    env = call["env"]
    assert env["NEO4J_HEAP"] == "2g" and env["NEO4J_PAGECACHE"] == "512m"
    assert env["NEO4J_BOLT_PORT"] == "27001" and env["NEO4J_HTTP_PORT"] == "27002"
    # A generated password, kept private and reused, reaches the container and the driver.
    pw = env["NEO4J_PASSWORD"]
    assert len(pw) >= 20 and pw != "neo4j"
    assert stat.S_IMODE(compose.password_file.stat().st_mode) == 0o600
    assert ComposeNeo4j(s).password() == pw
    conn = compose.connection_settings()
    assert conn.uri == "bolt://localhost:27001" and conn.password() == pw
    assert compose.stop()
    assert json.loads(fake_docker.read_text().splitlines()[-1])["argv"][-2:] == ["stop", "neo4j"]


def test_an_explicit_password_wins(tmp_path: Path, fake_docker: Path) -> None:
    compose = ComposeNeo4j(_settings(tmp_path, neo4j_password="s3cret-choice"))
    assert compose.environment()["NEO4J_PASSWORD"] == "s3cret-choice"
    assert not compose.password_file.exists()


def test_failures_are_one_line_errors(tmp_path: Path, fake_docker: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_FAIL", "1")
    with pytest.raises(ServerStartFailed, match="pull access denied"):
        ComposeNeo4j(_settings(tmp_path)).up()
    with pytest.raises(ConfigError, match="no docker-compose.yml"):
        ComposeNeo4j(_settings(tmp_path), compose_file=tmp_path / "docker-compose.yml").up()


def test_compose_file_reads_what_we_pass() -> None:
    text = COMPOSE_FILE.read_text()
    for var in (
        "NEO4J_PASSWORD",
        "NEO4J_HEAP",
        "NEO4J_PAGECACHE",
        "NEO4J_BOLT_PORT",
        "NEO4J_HTTP_PORT",
    ):
        assert "${" + var in text, var
