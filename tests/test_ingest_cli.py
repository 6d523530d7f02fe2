"""``spotify-engine ingest`` and ``data validate`` over a real subprocess, and the pipeline's edges.

The dry-run tests point the CLI at a port nothing listens on: a dry run must not need Neo4j.
User mistakes must end in one ``error:`` line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import neo4j
import pytest

import ingest
from ingest import SyntheticConfig
from ingest._pipeline import input_bytes
from spotify_engine.errors import IngestError
from spotify_engine.settings import Settings

try:
    from tests import _dirty
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import _dirty  # type: ignore[no-redef]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", **(env or {})}
    full.pop("SPOTIFY_ENGINE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def no_server(tmp_path: Path) -> dict[str, str]:
    """Settings that point at a closed port, with a home of the test's own."""
    return {
        "NEO4J_URI": f"bolt://127.0.0.1:{_free_port()}",
        "NEO4J_PASSWORD": "not-the-default",
        "SPOTIFY_ENGINE_HOME": str(tmp_path / "home"),
    }


def server_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {"SPOTIFY_ENGINE_HOME": str(tmp_path / "home")}
    if settings.neo4j_uri:
        env["NEO4J_URI"] = settings.neo4j_uri
        env["NEO4J_PASSWORD"] = settings.password()
    return env


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# -- the package surface ------------------------------------------------------------------------


# -- the pipeline without a server -------------------------------------------------------------


def test_dry_run_needs_no_driver(tmp_path: Path) -> None:
    path = _dirty.write_mpd_dirty(tmp_path / "mpd")
    events: list[tuple[str, int, int]] = []
    settings = Settings(home=tmp_path / "home")
    outcome = ingest.ingest(
        "mpd",
        path,
        settings=settings,
        dry_run=True,
        progress=lambda *e: events.append(e),
    )
    assert outcome.load is None and outcome.loaded == {}
    assert outcome.valid["playlist_tracks"] == 14
    assert outcome.folder.parent == tmp_path / "home" / "ingest"
    report = json.loads((outcome.folder / "report.json").read_text())
    assert report["dry_run"] is True and report["load"] is None
    total = input_bytes("mpd", path)
    reads = [e for e in events if e[0] == "read"]
    assert reads[-1] == ("read", total, total)
    assert [d for _, d, _ in reads] == sorted(d for _, d, _ in reads)
    assert events[-1] == ("close", 1, 1)


def test_pipeline_refuses_bad_calls(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(IngestError, match="no such file or folder: .*nope.tsv"):
        ingest.ingest("lastfm", tmp_path / "nope.tsv", settings=settings, dry_run=True)
    with pytest.raises(IngestError, match="unknown source 'spotify'"):
        ingest.ingest("spotify", tmp_path, settings=settings, dry_run=True)
    with pytest.raises(IngestError, match="needs an input path"):
        ingest.ingest("mpd", None, settings=settings, dry_run=True)
    path = _dirty.write_kaggle_clean(tmp_path / "k.csv")
    with pytest.raises(IngestError, match="no such features file"):
        ingest.ingest(
            "kaggle", path, settings=settings, dry_run=True, features_path=tmp_path / "f.csv"
        )
    with pytest.raises(ValueError, match="needs a driver"):
        ingest.ingest("kaggle", path, settings=settings)
    assert not (tmp_path / "home").exists()  # refused before any work
    with pytest.raises(IngestError, match="cannot read sessions input .*synthetic_sessions.csv"):
        ingest.ingest("sessions", tmp_path, settings=settings, dry_run=True)


def test_synthetic_dry_run_writes_tables_and_truth(tmp_path: Path) -> None:
    config = SyntheticConfig(users=5, songs=40, artists=4, days=2, mean_plays_per_user=6)
    outcome = ingest.ingest(
        "synthetic", out_dir=tmp_path / "w", synthetic=config, dry_run=True, settings=Settings()
    )
    assert outcome.folder == tmp_path / "w"
    assert (tmp_path / "w" / "truth.json").is_file()
    assert outcome.report.rows["users"] == 5 and outcome.report.rows["plays"] > 0
    assert outcome.report.total_rejected == 0


# -- the command line ------------------------------------------------------------------------------


def test_cli_dry_run_works_without_a_server(tmp_path: Path) -> None:
    path = _dirty.write_lastfm_dirty(tmp_path / "lastfm.tsv")
    proc = cli("ingest", "lastfm", str(path), "--dry-run", cwd=tmp_path, env=no_server(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("ingest lastfm", "read", "lastfm: truncated", "valid", "dry run", "quarantine:"):
        assert text in out, (text, out)
    quarantine = next(x for x in out.splitlines() if x.startswith("quarantine:"))
    assert "(9 rows)" in quarantine
    qpath = Path(quarantine.split()[1])
    assert qpath.is_file() and qpath.is_relative_to(tmp_path / "home" / "ingest")
    assert len(qpath.read_text(encoding="utf-8").splitlines()) == 9


def test_cli_synthetic_dry_run_with_out(tmp_path: Path) -> None:
    args = ["--users", "6", "--songs", "50", "--artists", "5", "--days", "2", "--seed", "3"]
    out = tmp_path / "gen"
    args += ["--out", str(out), "--dry-run"]
    proc = cli("ingest", "synthetic", *args, cwd=tmp_path, env=no_server(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "ingest synthetic" in proc.stdout and "dry run" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["rows"]["users"] == 6 and report["dry_run"] is True


def test_cli_synthetic_plays_total(tmp_path: Path) -> None:
    """Issue 15: ``--plays`` asks for a total of plays instead of a mean per user."""
    out = tmp_path / "gen"
    args = ["--users", "8", "--songs", "60", "--artists", "6", "--days", "5", "--plays", "800"]
    proc = cli(
        "ingest", "synthetic", *args, "--out", str(out), "--dry-run",
        cwd=tmp_path, env=no_server(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plays = json.loads((out / "report.json").read_text())["rows"]["plays"]
    assert 640 <= plays <= 960, plays
    proc = cli(
        "ingest", "synthetic", "--users", "8", "--plays", "3", "--dry-run",
        cwd=tmp_path, env=no_server(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2 and "plays must be >= users" in proc.stderr


@pytest.mark.parametrize("source", ["sessions", "lastfm", "kaggle", "mpd"])
def test_cli_missing_path_is_one_error_line(source: str, tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    proc = cli("ingest", source, str(missing), cwd=tmp_path, env=no_server(tmp_path))
    line = one_error_line(proc)
    assert "no such file or folder" in line and "does-not-exist" in line


def test_cli_server_down_is_one_error_line(tmp_path: Path) -> None:
    path = _dirty.write_lastfm_clean(tmp_path / "lastfm.tsv")
    proc = cli("ingest", "lastfm", str(path), cwd=tmp_path, env=no_server(tmp_path))
    assert "Neo4j is not reachable" in one_error_line(proc)


def test_cli_bad_synthetic_sizes_are_a_usage_error(tmp_path: Path) -> None:
    args = ["--songs", "3", "--artists", "5", "--dry-run"]
    proc = cli("ingest", "synthetic", *args, cwd=tmp_path, env=no_server(tmp_path))
    assert proc.returncode == 2 and "songs must be >= artists" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.neo4j
def test_cli_loads_then_skips_the_same_batch(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    path = _dirty.write_sessions_dirty(tmp_path / "sessions")
    env = server_env(neo4j_settings, tmp_path)
    first = cli("ingest", "sessions", str(path), "--batch-size", "2", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    for text in ("loaded", "relationships written", "sessions new", "load: plays", "rejected"):
        assert text in first.stdout, (text, first.stdout)
    records, _, _ = graph.execute_query(
        "MATCH ()-[p:PLAYED]->() RETURN count(p) AS n", database_=neo4j_settings.neo4j_database
    )
    assert records[0]["n"] == 5
    again = cli("ingest", "sessions", str(path), cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "already applied" in again.stdout


@pytest.mark.neo4j
def test_cli_validate_exit_codes(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    env = server_env(neo4j_settings, tmp_path)
    args = ["--users", "20", "--songs", "200", "--artists", "20", "--plays-per-user", "20"]
    loaded = cli("ingest", "synthetic", *args, cwd=tmp_path, env=env)
    assert loaded.returncode == 0, loaded.stderr
    ok = cli("data", "validate", cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("PASS") == 7 and "FAIL" not in ok.stdout
    graph.execute_query(
        "MATCH (:User)-[l:LISTENED]->(:Song) WITH l LIMIT 1 SET l.plays = l.plays * 2 + 1",
        database_=neo4j_settings.neo4j_database,
    )
    bad = cli("data", "validate", "--sample-songs", "50", cwd=tmp_path, env=env)
    assert bad.returncode == 1
    assert "FAIL" in bad.stdout and "1 of 7 checks failed" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr


@pytest.mark.neo4j
def test_cli_summary_of_a_file_with_every_defect(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    """Issue 16's closing counts: read, loaded, rejected, duplicate, as the summary shows them
    and as the graph holds them."""
    path = _dirty.write_lastfm_every_defect(tmp_path / "plays.tsv")
    env = server_env(neo4j_settings, tmp_path)
    run = cli("ingest", "lastfm", str(path), "--out", str(tmp_path / "work"), cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [" ".join(line.replace("│", " ").split()) for line in run.stdout.splitlines()]
    for want in (
        "read lastfm 12",
        "rejected lastfm: id_too_long 1",
        "rejected lastfm: bad_id 1",
        "rejected lastfm: bad_timestamp 1",
        "rejected lastfm: column_count 1",
        "rejected lastfm: truncated 1",
        "duplicates lastfm: dropped, already read 2",
        "valid plays 5",
        "loaded plays 5",
    ):
        assert want in rows, (want, run.stdout)
    db = neo4j_settings.neo4j_database
    records, _, _ = graph.execute_query(
        "MATCH (:User)-[l:LISTENED]->(s:Song) RETURN sum(l.plays) AS plays, "
        "count(l) AS pairs, max(size(s.name)) AS longest",
        database_=db,
    )
    assert records[0].data() == {"plays": 5, "pairs": 5, "longest": 10_000}
    report = json.loads((tmp_path / "work" / "report.json").read_text())
    assert report["duplicates"] == {"lastfm": 2} and report["read"] == {"lastfm": 12}
