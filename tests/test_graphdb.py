"""The Neo4j foundation against a real server (issue 2)."""

from __future__ import annotations

import shutil
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import neo4j
import pytest
from neo4j import exceptions as nx

from graphdb import (
    ERROR_MAP,
    LocalServer,
    apply_schema,
    connect,
    graph_stats,
    java_executable,
    schema_objects,
    translate,
    verify,
)
from spotify_engine.errors import (
    AuthFailed,
    DownloadFailed,
    GraphUnavailable,
    JavaNotFound,
    PortInUse,
    QueryFailed,
    ServerStartFailed,
)
from spotify_engine.settings import Settings

pytestmark = pytest.mark.neo4j


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connectivity_and_auth_is_on(driver: neo4j.Driver, neo4j_settings: Settings) -> None:
    records, _, _ = driver.execute_query("RETURN 1 AS ok", database_=neo4j_settings.neo4j_database)
    assert records[0]["ok"] == 1
    assert neo4j_settings.password() != "neo4j"


def test_wrong_password_is_refused(neo4j_settings: Settings) -> None:
    bad = neo4j_settings.model_copy(update={"neo4j_password": "definitely-wrong"})
    drv = connect(bad)
    try:
        with pytest.raises(AuthFailed):
            verify(drv)
    finally:
        drv.close()


def test_schema_twice_is_a_no_op(graph: neo4j.Driver, neo4j_settings: Settings) -> None:
    db = neo4j_settings.neo4j_database
    apply_schema(graph, db)
    first = schema_objects(graph, db)
    apply_schema(graph, db)
    second = schema_objects(graph, db)
    assert first == second
    names = {o["name"] for o in first}
    for label in ("user", "song", "artist", "album", "genre", "playlist", "session"):
        assert f"{label}_id" in names
    assert all(o["state"] == "ONLINE" for o in first)


def test_uniqueness_constraint_enforced(graph: neo4j.Driver, neo4j_settings: Settings) -> None:
    db = neo4j_settings.neo4j_database
    graph.execute_query("CREATE (:Song {id: $id})", id="s1", database_=db)
    with pytest.raises(nx.ConstraintError):
        graph.execute_query("CREATE (:Song {id: $id})", id="s1", database_=db)


def test_stats_count_labels_and_types(graph: neo4j.Driver, neo4j_settings: Settings) -> None:
    db = neo4j_settings.neo4j_database
    graph.execute_query(
        "CREATE (:User {id: 'u'})-[:LISTENED]->(:Song {id: 'a'}), (:Song {id: 'b'})",
        database_=db,
    )
    st = graph_stats(graph, db)
    assert st.labels == {"Song": 2, "User": 1}
    assert st.relationships == {"LISTENED": 1}


def test_every_caught_driver_exception_is_mapped() -> None:
    caught = {src for src, _ in ERROR_MAP}
    for exc_type in (
        nx.AuthError,
        nx.ServiceUnavailable,
        nx.SessionExpired,
        nx.TransientError,
        nx.ClientError,
        nx.DatabaseError,
        nx.ConstraintError,
        nx.CypherSyntaxError,
    ):
        assert any(issubclass(exc_type, c) for c in caught), exc_type
    assert isinstance(translate(nx.ServiceUnavailable("down")), GraphUnavailable)
    assert isinstance(translate(nx.CypherSyntaxError("bad")), QueryFailed)
    assert isinstance(translate(ConnectionRefusedError("refused")), GraphUnavailable)


def test_browser_is_served(neo4j_settings: Settings) -> None:
    if not neo4j_settings.uses_local_server:
        pytest.skip("the Browser check needs the locally managed server")
    url = f"http://127.0.0.1:{neo4j_settings.http_port}/browser/"
    with urllib.request.urlopen(url, timeout=10) as resp:
        html = resp.read().decode()
    assert resp.status == 200
    assert "<title>Neo4j Browser</title>" in html


def test_password_file_is_private(neo4j_settings: Settings) -> None:
    if not neo4j_settings.uses_local_server:
        pytest.skip("only the local server has a generated password file")
    mode = stat.S_IMODE(neo4j_settings.password_file.stat().st_mode)
    assert mode == 0o600


# -- lifecycle on a throwaway instance -------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, neo4j_settings: Settings) -> Settings:
    home = tmp_path_factory.mktemp("neo4j-scratch")
    return Settings(
        neo4j_home=home,
        bolt_port=_free_port(),
        http_port=_free_port(),
        heap_size="512m",
        pagecache_size="128m",
        neo4j_password=None,
        start_timeout_s=120,
    )


@pytest.mark.slow
def test_lifecycle_data_survives_restart(scratch: Settings) -> None:
    server = LocalServer(scratch)
    server.install()
    assert not server.status().running
    st = server.start()
    try:
        assert st.running and st.pid
        with connect(scratch) as drv:
            drv.execute_query("CREATE (:Genre {id: $id, name: $name})", id="g1", name="Jazz ✓")
    finally:
        assert server.stop()
    stopped = server.status()
    assert not stopped.running and stopped.pid is None and stopped.installed
    assert not server.stop()
    server.start()
    try:
        with connect(scratch) as drv:
            records, _, _ = drv.execute_query("MATCH (g:Genre {id: 'g1'}) RETURN g.name AS name")
        assert [r["name"] for r in records] == ["Jazz ✓"]
        assert "Started." in server.log_tail(200)
    finally:
        server.stop()


@pytest.mark.slow
def test_port_taken_gives_a_clear_error(scratch: Settings) -> None:
    server = LocalServer(scratch)
    server.install()
    with socket.socket() as blocker:
        # the port may hold TIME_WAIT connections of an earlier test's server
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", scratch.bolt_port))
        blocker.listen()
        with pytest.raises(PortInUse, match=str(scratch.bolt_port)):
            server.start()
    assert not server.status().running


def _fake_java(tmp_path: Path, version: str, body: str = "exit 0") -> Path:
    home = tmp_path / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-version" ]; then echo \'openjdk version "{version}"\' >&2; exit 0; fi\n'
        f"{body}\n"
    )
    java.chmod(0o755)
    return home


def test_wrong_java_version_is_refused(tmp_path: Path) -> None:
    s = Settings(java_home=_fake_java(tmp_path, "11.0.2"), neo4j_home=tmp_path / "h")
    with pytest.raises(JavaNotFound, match="Java 11"):
        java_executable(s)
    assert java_executable(Settings(java_home=_fake_java(tmp_path, "17.0.9"))).name == "java"


def test_no_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaNotFound, match="not found"):
        java_executable(Settings(neo4j_home=tmp_path / "h"))


@pytest.mark.slow
def test_server_dying_on_start_shows_its_log(scratch: Settings, tmp_path: Path) -> None:
    """A JVM that exits at once: start fails fast with the console log tail in the message."""
    real = LocalServer(scratch)
    real.install()
    crashing = _fake_java(
        tmp_path, "17.0.9", 'echo "simulated crash: could not map memory"; exit 3'
    )
    server = LocalServer(scratch.model_copy(update={"java_home": crashing, "start_timeout_s": 30}))
    with pytest.raises(ServerStartFailed, match="simulated crash"):
        server.start()
    assert not server.status().running


@pytest.mark.slow
def test_corrupt_cache_is_downloaded_again(neo4j_settings: Settings, tmp_path: Path) -> None:
    if not neo4j_settings.uses_local_server:
        pytest.skip("the distribution cache belongs to the local server")
    src = LocalServer(neo4j_settings).dist
    cache = tmp_path / "cache"
    shutil.copytree(src, cache / src.name)
    s = Settings(cache_dir=cache, neo4j_home=tmp_path / "home")
    server = LocalServer(s)
    assert server.distribution_ok()
    victim = sorted((server.lib_dir).glob("neo4j-kernel-*.jar"))[0]
    victim.write_bytes(victim.read_bytes()[:1000])
    assert not server.distribution_ok()
    server.install()
    assert server.distribution_ok()


def test_download_failure_is_clear(tmp_path: Path) -> None:
    s = Settings(cache_dir=tmp_path / "c", neo4j_home=tmp_path / "h", neo4j_version="0.0.0-none")
    with pytest.raises(DownloadFailed, match="0.0.0-none"):
        LocalServer(s).install()


def test_cli_status_on_a_stopped_server(tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(Path.home()),
        "SPOTIFY_ENGINE_NEO4J_HOME": str(tmp_path / "nothing-here"),
        "SPOTIFY_ENGINE_BOLT_PORT": str(_free_port()),
    }
    out = subprocess.run(
        [str(Path(sys.executable).parent / "spotify-engine"), "neo4j", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "stopped" in out.stdout
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "spotify-engine"), "db", "stats"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 1
    assert cli.stderr.startswith("error:") and "Traceback" not in cli.stderr


def test_generated_passwords_never_read_as_options() -> None:
    """Regression: a password from ``token_urlsafe`` began with '-' about once in 64 installs,
    and ``neo4j-admin dbms set-initial-password -xyz`` then failed with a missing parameter."""
    import re

    from graphdb._server import new_password

    seen = {new_password() for _ in range(2000)}
    assert len(seen) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{40}", pw) for pw in seen)


def test_concurrent_installs_assemble_the_cache_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two installs at once (a benchmark beside the tests): the second waits for the first's
    download instead of emptying its staging folder, and finds the cache complete."""
    import threading
    import time
    import zipfile

    s = Settings(cache_dir=tmp_path / "c", neo4j_home=tmp_path / "h")
    calls: list[int] = []

    def assemble(self: LocalServer) -> None:
        calls.append(threading.get_ident())
        time.sleep(0.5)  # the download; the other thread arrives meanwhile
        self.lib_dir.mkdir(parents=True)
        with zipfile.ZipFile(self.lib_dir / "neo4j-fake.jar", "w") as zf:
            zf.writestr("x", "y")
        self._complete_marker.write_text("neo4j-fake.jar\n")

    monkeypatch.setattr(LocalServer, "_assemble", assemble)
    did: list[bool] = []
    threads = [
        threading.Thread(target=lambda: did.append(LocalServer(s)._ensure_distribution()))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(did) == [False, True]
    assert LocalServer(s).distribution_ok()
