"""A local Neo4j Community 5.26 server without Docker, assembled from Maven Central.

Maven Central does not carry the packaged ``neo4j-community-standalone`` tarball for 5.26
(only its POM), so the server is assembled from its published artifacts
(``org.neo4j.app:neo4j-server``, ``org.neo4j:neo4j`` and ``org.neo4j.client:neo4j-browser``)
by ``mvn dependency:copy-dependencies`` into a cached distribution folder, and started with
``org.neo4j.server.CommunityEntryPoint`` on the machine's Java 17. The JVM is the same one
the ``neo4j`` launcher script would start; we only pass the heap flags it would derive.

Layout:
    <cache_dir>/neo4j-<version>/lib/*.jar      shared, downloaded once (Maven repo in ~/.m2)
    <local_home>/conf/neo4j.conf                rewritten from Settings on every start
    <local_home>/data, logs, run/neo4j.pid      per instance; data survives restarts
    <local_home>/password                       generated, mode 0600
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from spotify_engine.errors import (
    DownloadFailed,
    JavaNotFound,
    PortInUse,
    ServerError,
    ServerNotInstalled,
    ServerStartFailed,
)
from spotify_engine.settings import Settings

log = logging.getLogger(__name__)

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
MIN_JAVA = 17

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.spotify-engine</groupId>
  <artifactId>neo4j-assembly</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j.app</groupId><artifactId>neo4j-server</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.neo4j</groupId><artifactId>neo4j</artifactId><version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.neo4j.client</groupId><artifactId>neo4j-browser</artifactId>
      <version>{browser}</version>
    </dependency>
  </dependencies>
</project>
"""

# The JVM flags Neo4j's own neo4j.conf ships under server.jvm.additional, except the garbage
# collector: the throughput collector instead of G1. On 2 cores G1's concurrent work and write
# barriers cost the single-threaded write path a fifth of its speed (ingest benchmark, 2g heap:
# 45k relationships/s with G1, 56k with ParallelGC).
_JVM_FLAGS = [
    "-XX:+UseParallelGC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "-XX:FlightRecorderOptions=stackdepth=256",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:+DebugNonSafepoints",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
]


@dataclass(frozen=True)
class ServerStatus:
    """What ``spotify-engine neo4j status`` prints."""

    installed: bool
    running: bool
    pid: int | None
    bolt_port: int
    http_port: int
    version: str
    home: Path
    rss_bytes: int | None = None

    @property
    def bolt_uri(self) -> str:
        return f"bolt://localhost:{self.bolt_port}"

    @property
    def browser_url(self) -> str:
        return f"http://localhost:{self.http_port}/browser/"


def java_executable(settings: Settings) -> Path:
    """The java binary, checked to be Java 17 or newer."""
    java_home = settings.java_home or (
        Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else None
    )
    candidate = java_home / "bin" / "java" if java_home else None
    if candidate is None or not candidate.exists():
        found = shutil.which("java")
        if not found:
            raise JavaNotFound("java was not found on PATH")
        candidate = Path(found)
    try:
        out = subprocess.run(
            [str(candidate), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise JavaNotFound(f"cannot run {candidate}: {exc}") from exc
    text = out.stderr + out.stdout
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not m:
        raise JavaNotFound(f"cannot read the Java version from {candidate}")
    major = int(m.group(1))
    if major == 1 and m.group(2):
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise JavaNotFound(f"Java {major} found at {candidate}; Neo4j 5.26 needs Java {MIN_JAVA}+")
    return candidate


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on (host, port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait until the process has exited; a zombie (exited, not yet reaped by the process
    that started it, e.g. another CLI or test run) counts as gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


def _jar_ok(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return True


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64_000))
        data = fh.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def new_password() -> str:
    """A generated password: 40 hex digits. Never ``token_urlsafe``, whose output can begin
    with ``-`` and then reads as an option to ``neo4j-admin`` (1 install in 64 failed so)."""
    return secrets.token_hex(20)


class LocalServer:
    """Install, start, stop and inspect one local Neo4j instance described by ``Settings``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = settings.local_home
        self.dist = settings.distribution_dir

    # -- paths ---------------------------------------------------------------------------
    @property
    def lib_dir(self) -> Path:
        return self.dist / "lib"

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "neo4j.pid"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    @property
    def _complete_marker(self) -> Path:
        return self.dist / ".complete"

    # -- install ---------------------------------------------------------------------------
    def distribution_ok(self) -> bool:
        """The cached jars are all there and readable as zip files."""
        if not self._complete_marker.exists():
            return False
        expected = self._complete_marker.read_text().split()
        for name in expected:
            jar = self.lib_dir / name
            if not _jar_ok(jar):
                log.warning("missing or corrupt jar in the Neo4j cache: %s", jar)
                return False
        return bool(expected)

    def _assemble(self) -> None:
        mvn = shutil.which("mvn")
        if not mvn:
            raise DownloadFailed(
                "Maven (mvn) was not found; it is needed to fetch Neo4j from Maven Central",
                hint="install Maven (apt-get install maven) or point NEO4J_URI at a running server",
            )
        self.dist.mkdir(parents=True, exist_ok=True)
        (self.dist / "pom.xml").write_text(
            _POM.format(version=self.settings.neo4j_version, browser=self.settings.browser_version)
        )
        staging = self.dist / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(self.dist / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        log.info("resolving Neo4j %s from Maven Central", self.settings.neo4j_version)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln]
            detail = lines[0] if lines else f"mvn exited with {proc.returncode}"
            raise DownloadFailed(
                f"could not download Neo4j {self.settings.neo4j_version}: {detail}"
            )
        jars = sorted(p.name for p in staging.glob("*.jar"))
        bad = [name for name in jars if not _jar_ok(staging / name)]
        if bad or not jars:
            raise DownloadFailed(f"downloaded jars are corrupt: {', '.join(bad) or 'none found'}")
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        staging.rename(self.lib_dir)
        self._complete_marker.write_text("\n".join(jars) + "\n")

    def _purge_maven_cache(self) -> None:
        """Drop local Maven copies that are corrupt too, so that Maven downloads them again."""
        m2 = Path.home() / ".m2" / "repository"
        if not self.lib_dir.exists() or not m2.exists():
            return
        for jar in self.lib_dir.glob("*.jar"):
            if _jar_ok(jar):
                continue
            for cached in m2.rglob(jar.name):
                if not _jar_ok(cached):
                    log.warning("removing corrupt cached artifact %s", cached)
                    shutil.rmtree(cached.parent, ignore_errors=True)

    def install(self) -> bool:
        """Assemble the distribution (if needed) and create the instance; True if work was done."""
        java_executable(self.settings)
        did = self._ensure_distribution()
        if not self.password_initialised():
            self._create_instance()
            did = True
        return did

    def _ensure_distribution(self) -> bool:
        """Assemble the shared jar cache unless it is complete; True if this call did.

        Every instance of one Neo4j version shares the cache, so two processes may install at
        once (a benchmark and the tests): the second waits on a file lock beside the cache
        and finds it complete, instead of emptying the first one's staging folder under it.
        """
        if self.distribution_ok():
            return False
        self.dist.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dist.with_name(self.dist.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.distribution_ok():
                return False
            self._purge_maven_cache()
            self._complete_marker.unlink(missing_ok=True)
            self._assemble()
            return True

    def installed(self) -> bool:
        return self.distribution_ok() and self.password_initialised()

    def password_initialised(self) -> bool:
        """The instance exists and its generated password was handed to Neo4j."""
        data = self.home / "data"
        handed_over = (data / "dbms" / "auth.ini").exists() or (
            data / "databases" / "system"
        ).exists()
        return handed_over and self.settings.password_file.exists()

    def _create_instance(self) -> None:
        for sub in ("conf", "data", "logs", "run", "import", "plugins"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        pw_file = self.settings.password_file
        if pw_file.exists():
            password = pw_file.read_text().strip()
        else:
            password = new_password()
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
        os.chmod(pw_file, 0o600)
        self.write_config()
        out = self._admin("dbms", "set-initial-password", password)
        if out.returncode != 0:
            raise ServerError(
                "could not set the initial password: "
                + (out.stderr.strip().splitlines() or ["?"])[0][:300]
            )

    def _admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, NEO4J_HOME=str(self.home), NEO4J_CONF=str(self.conf_dir))
        java = java_executable(self.settings)
        return subprocess.run(
            [str(java), "-cp", f"{self.lib_dir}/*", ADMIN_TOOL, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def write_config(self) -> None:
        """Render conf/neo4j.conf from Settings (ports, memory, auth on, no telemetry)."""
        s = self.settings
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        # Browser fetches remote guides and :style sheets only from allow-listed hosts; on
        # connect it runs post_connect_cmd, which then opens our guide (`browser guide`).
        allowed = ",".join(dict.fromkeys(["guides.neo4j.com", "localhost", s.guide_host]))
        browser = f"browser.remote_content_hostname_whitelist={allowed}\n"
        if s.guide_port is not None:
            base = f"http://{s.guide_host}:{s.guide_port}"
            cmds = f"style {base}/style.grass; play {base}/guide.html"
            browser += f"browser.post_connect_cmd={cmds}\n"
        conf = f"""# Written by spotify-engine from its Settings on every start; edits are lost.
server.default_listen_address={s.listen_address}
server.default_advertised_address=localhost
server.bolt.listen_address=:{s.bolt_port}
server.bolt.advertised_address=:{s.bolt_port}
server.http.listen_address=:{s.http_port}
server.http.advertised_address=:{s.http_port}
server.https.enabled=false
server.memory.heap.initial_size={s.heap_size}
server.memory.heap.max_size={s.heap_size}
server.memory.pagecache.size={s.pagecache_size}
dbms.security.auth_enabled=true
dbms.usage_report.enabled=false
server.directories.data={self.home / "data"}
server.directories.logs={self.logs_dir}
server.directories.run={self.home / "run"}
server.directories.import={self.home / "import"}
server.directories.plugins={self.home / "plugins"}
db.tx_log.rotation.retention_policy=2 files
# every node keeps its relationships grouped by type: a loader's overlapping transactions
# (plays, aggregates) then never lock one chain, see ingest/_loader.py
db.relationship_grouping_threshold=1
{browser}dbms.security.http_access_control_allow_origin=*
"""
        (self.conf_dir / "neo4j.conf").write_text(conf)

    # -- run -------------------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            return None
        if ENTRY_POINT in cmd and str(self.home) in cmd:
            return pid
        return None

    def status(self) -> ServerStatus:
        pid = self._read_pid()
        rss = None
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                rss = psutil.Process(pid).memory_info().rss
        return ServerStatus(
            installed=self.installed(),
            running=pid is not None,
            pid=pid,
            bolt_port=self.settings.bolt_port,
            http_port=self.settings.http_port,
            version=self.settings.neo4j_version,
            home=self.home,
            rss_bytes=rss,
        )

    def start(self, *, wait: bool = True) -> ServerStatus:
        """Start the server in the background and wait until Bolt accepts our credentials."""
        if not self.installed():
            raise ServerNotInstalled(f"no local Neo4j instance in {self.home}")
        current = self.status()
        if current.running:
            if wait:
                self._wait_for_bolt(current.pid)
            return self.status()
        s = self.settings
        for name, port in (("bolt", s.bolt_port), ("http", s.http_port)):
            if port_in_use(s.listen_address, port):
                raise PortInUse(f"the {name} port {port} is already in use by another process")
        java = java_executable(s)
        self.write_config()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(java),
            f"-Xms{s.heap_size}",
            f"-Xmx{s.heap_size}",
            *_JVM_FLAGS,
            f"-Dspotify_engine.home={self.home}",
            "-cp",
            f"{self.lib_dir}/*",
            ENTRY_POINT,
            f"--home-dir={self.home}",
            f"--config-dir={self.conf_dir}",
        ]
        with self.console_log.open("ab") as out:
            out.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
            out.flush()
            self._console_offset = out.tell()
            proc = subprocess.Popen(
                cmd,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        if wait:
            self._wait_for_bolt(proc.pid, proc)
        return self.status()

    def _wait_for_bolt(self, pid: int | None, proc: subprocess.Popen[bytes] | None = None) -> None:
        from graphdb._driver import probe

        deadline = time.monotonic() + self.settings.start_timeout_s
        last_error = "no answer"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServerStartFailed(
                    f"Neo4j exited with code {proc.returncode} while starting; last log lines:\n"
                    + self._start_output(15)
                )
            if pid is not None and not psutil.pid_exists(pid):
                raise ServerStartFailed(
                    "Neo4j died while starting; last log lines:\n" + self._start_output(15)
                )
            ok, last_error = probe(self.settings)
            if ok:
                return
            time.sleep(0.5)
        raise ServerStartFailed(
            f"Neo4j did not answer on bolt port {self.settings.bolt_port} within "
            f"{self.settings.start_timeout_s:.0f}s ({last_error}); last log lines:\n"
            + self.log_tail(15)
        )

    def _start_output(self, lines: int) -> str:
        """What the JVM printed since this start, else the tail of neo4j.log."""
        offset = getattr(self, "_console_offset", None)
        if offset is not None and self.console_log.exists():
            with self.console_log.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", errors="replace").strip()
            if text:
                return "\n".join(text.splitlines()[-lines:])
        return self.log_tail(lines)

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop cleanly (SIGTERM, then SIGKILL after ``timeout``); False if it was not running."""
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        if not _wait_gone(proc, timeout):
            log.warning("Neo4j did not stop within %.0fs; killing it", timeout)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
            _wait_gone(proc, 30)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 50) -> str:
        """The last lines of neo4j.log, or of the console log when that is empty."""
        text = _tail(self.logs_dir / "neo4j.log", lines)
        console = _tail(self.console_log, lines)
        if console and ("Exception" in console or "Error" in console or not text):
            return console
        return text

    def reset(self) -> None:
        """Delete all data (keeps the distribution and the password)."""
        was_running = self.stop()
        shutil.rmtree(self.home / "data", ignore_errors=True)
        if self.distribution_ok():
            self._create_instance()
        if was_running:
            self.start()
