"""``data profile`` on small loaded graphs: the PNG plots and the markdown report are written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import neo4j
import pytest

from ingest import SyntheticConfig, ingest, profile_graph
from ingest._profile import PLOTS, REPORT_FILE
from spotify_engine.errors import NotFound
from spotify_engine.settings import Settings

try:
    from tests import _dirty
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import _dirty  # type: ignore[no-redef]

pytestmark = pytest.mark.neo4j

SMALL = SyntheticConfig(users=30, songs=300, artists=30, days=7, mean_plays_per_user=25, seed=11)
PNG = b"\x89PNG\r\n\x1a\n"


def _assert_pngs(out: Path) -> None:
    for name in PLOTS:
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 2_000, name


def test_profile_of_a_synthetic_graph(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    outcome = ingest(
        "synthetic",
        driver=graph,
        settings=neo4j_settings,
        out_dir=tmp_path / "work",
        synthetic=SMALL,
    )
    result = profile_graph(graph, neo4j_settings.neo4j_database, tmp_path / "profile")
    assert set(result.plots) == set(PLOTS)
    _assert_pngs(tmp_path / "profile")
    n = result.numbers
    plays = outcome.report.rows["plays"]
    assert n["plays"] == plays and n["users"] == 30 and n["songs"] == 300
    assert n["plays per user: mean"] == pytest.approx(plays / 30, abs=0.1)
    assert 0 <= n["peak hour (UTC)"] < 24
    assert n["top / median genre plays"] >= 3
    text = result.report.read_text(encoding="utf-8")
    assert result.report == tmp_path / "profile" / REPORT_FILE
    assert f"| plays | {plays:,} |" in text
    for name in PLOTS:
        assert f"]({name}.png)" in text


def test_profile_of_a_playlist_only_graph(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    path = _dirty.write_mpd_clean(tmp_path / "mpd")
    ingest("mpd", path, driver=graph, settings=neo4j_settings, out_dir=tmp_path / "work")
    result = profile_graph(graph, neo4j_settings.neo4j_database, tmp_path / "profile")
    _assert_pngs(tmp_path / "profile")
    assert result.numbers["plays"] == 0 and result.numbers["playlists"] == 4
    assert "peak hour (UTC)" not in result.numbers


def test_profile_of_an_empty_graph_says_so(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="nothing to profile"):
        profile_graph(graph, neo4j_settings.neo4j_database, tmp_path / "profile")
    assert not (tmp_path / "profile").exists()


def test_cli_profile_writes_into_runs_dir(
    graph: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    ingest(
        "synthetic",
        driver=graph,
        settings=neo4j_settings,
        out_dir=tmp_path / "work",
        synthetic=SMALL,
    )
    env = {**os.environ, "COLUMNS": "200", "SPOTIFY_ENGINE_RUNS_DIR": str(tmp_path / "runs")}
    if neo4j_settings.neo4j_uri:
        env |= {"NEO4J_URI": neo4j_settings.neo4j_uri, "NEO4J_PASSWORD": neo4j_settings.password()}
    proc = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "data", "profile"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "runs" / "profile"
    _assert_pngs(out)
    assert (out / REPORT_FILE).is_file()
    assert "Data profile" in proc.stdout and str(out / REPORT_FILE) in proc.stdout
