"""Comparing two user-task runs online (issue 14, item 6).

The unit part checks the traffic split and the statistics; the HTTP part (``@neo4j``) serves two
real runs through a real API with an experiment running, lets a simulated client play more
songs from one run's lists, and checks that ``spotify-engine models online`` names that run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import neo4j
import numpy as np
import pytest

from gnn.core import compare_online, get_online, start_online, stop_online
from spotify_engine.errors import ModelError
from spotify_engine.settings import Settings


def test_the_split_is_stable_and_has_the_share(tmp_path: Path) -> None:
    exp = start_online(tmp_path, "run-a", "run-b", share=0.3)
    users = [f"U{i:05d}" for i in range(20_000)]
    arms = [exp.arm(u) for u in users]
    assert arms == [exp.arm(u) for u in users]  # the same user, the same run, every time
    assert set(arms) == {"run-a", "run-b"}
    assert abs(arms.count("run-b") / len(users) - 0.3) < 0.015
    again = get_online(tmp_path)  # what another worker reads from the file
    assert again == exp and [again.arm(u) for u in users[:500]] == arms[:500]


def test_a_new_experiment_reassigns_users(tmp_path: Path) -> None:
    first = start_online(tmp_path, "run-a", "run-b")
    stop_online(tmp_path)
    second = start_online(tmp_path, "run-a", "run-b")
    users = [f"U{i}" for i in range(2_000)]
    same = np.mean([first.arm(u) == second.arm(u) for u in users])
    assert 0.4 < same < 0.6  # independent hashes: about half keep their arm


def test_start_refuses_what_cannot_be_compared(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="already the active run"):
        start_online(tmp_path, "run-a", "run-a")
    with pytest.raises(ModelError, match="share"):
        start_online(tmp_path, "run-a", "run-b", share=1.0)
    start_online(tmp_path, "run-a", "run-b")
    with pytest.raises(ModelError, match="already running"):
        start_online(tmp_path, "run-a", "run-c")
    assert stop_online(tmp_path) is not None and get_online(tmp_path) is None
    (tmp_path / "ONLINE.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        get_online(tmp_path)


def _rows(rng: np.random.Generator, run: str, users: int, p: float) -> list[dict]:
    shown = rng.integers(5, 15, size=users)
    played = rng.binomial(shown, p)
    return [
        {"user": f"{run}-{i}", "run": run, "shown": int(s), "played": int(k)}
        for i, (s, k) in enumerate(zip(shown, played, strict=True))
    ]


def test_the_comparison_finds_a_real_difference_and_no_false_one() -> None:
    rng = np.random.default_rng(3)
    rows = _rows(rng, "a", 200, 0.10) + _rows(rng, "b", 200, 0.20)
    out = compare_online(rows, ("a", "b"))
    a, b = out["runs"]["a"], out["runs"]["b"]
    assert a["users"] == b["users"] == 200
    assert a["share"] == pytest.approx(a["played"] / a["shown"])
    assert a["ci"][0] < a["share"] < a["ci"][1]
    assert out["difference"]["value"] == pytest.approx(b["share"] - a["share"])
    assert out["difference"]["ci"][0] > 0 and out["verdict"] == "the challenger b wins"
    flipped = compare_online(rows, ("b", "a"))
    assert flipped["verdict"] == "the control b wins"

    wins = 0
    for seed in range(20):  # equal runs: a 95% interval excludes 0 rarely
        r = np.random.default_rng(100 + seed)
        same = compare_online(
            _rows(r, "a", 100, 0.15) + _rows(r, "b", 100, 0.15), ("a", "b"), resamples=500
        )
        wins += same["verdict"] != "no difference at this confidence yet"
    assert wins <= 3


def test_a_run_without_exposures_is_not_compared() -> None:
    rng = np.random.default_rng(0)
    out = compare_online(_rows(rng, "a", 10, 0.1), ("a", "b"))
    assert out["runs"]["b"]["users"] == 0
    assert out["verdict"] == "not enough exposures in both runs to compare"
    json.dumps(out)  # the CLI and benchmarks save it as JSON


# -- over real HTTP, two real runs ------------------------------------------------------------
KEY = "test-key-" + "online-0123456789"


@pytest.mark.neo4j
@pytest.mark.slow
def test_a_client_that_plays_more_from_one_run_shows_it_winning(
    driver: neo4j.Driver, neo4j_settings: Settings, tmp_path: Path
) -> None:
    from _api_world import build_world, run_server, server_env

    from gnn.graph import export_snapshot
    from gnn.users import prepare, train_model
    from graphdb import exposure_outcomes, wipe_graph

    db = neo4j_settings.neo4j_database
    wipe_graph(driver, db)
    world = build_world(driver, neo4j_settings, tmp_path / "world")
    snap = export_snapshot(driver, db)
    challenger = train_model(
        prepare(snap), "ease", runs_root=world.runs_root, activate=False
    ).run.run_id
    exp = start_online(world.runs_root, world.run_id, challenger, share=0.5)
    users = [str(snap.user_ids[i]) for i in np.unique(snap.play_user)]  # with history
    assert 5 <= sum(exp.arm(u) == challenger for u in users) <= len(users) - 5

    env = server_env(
        neo4j_settings, SPOTIFY_ENGINE_RUNS_DIR=str(world.runs_root), SPOTIFY_ENGINE_API_KEY=KEY
    )
    served: dict[str, tuple[str, list[str]]] = {}
    with (
        run_server(env, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=300) as client,
    ):
        for u in users:
            body = client.get(f"/users/{u}/recommendations", params={"k": 10}).json()
            assert body["run_id"] == exp.arm(u), (u, body["source"])
            served[u] = (body["run_id"], [i["song_id"] for i in body["items"]])
            again = client.get(f"/users/{u}/recommendations", params={"k": 10}).json()
            assert (again["run_id"], [i["song_id"] for i in again["items"]]) == served[u]
        # The simulated listeners: five songs of a challenger list, one of a control list.
        later = datetime.now(UTC) + timedelta(minutes=1)
        for n, (u, (run, songs)) in enumerate(served.items()):
            take = songs[: 5 if run == challenger else 1]
            plays = [
                {"song_id": s, "at": (later + timedelta(minutes=4 * i)).isoformat()}
                for i, s in enumerate(take)
            ]
            r = client.post(
                "/events/plays",
                json={"user_id": u, "plays": plays, "idempotency_key": f"online-{n}"},
                headers={"X-API-Key": KEY},
            )
            assert r.status_code == 201, r.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # exposures are written in the background
            seen = driver.execute_query(
                "MATCH (:User)-[:SAW]->(e:Exposure {experiment: $x}) RETURN count(e) AS n",
                x=exp.id,
                database_=db,
            ).records[0]["n"]
            if seen == 2 * len(users):
                break
            time.sleep(0.5)
        assert seen == 2 * len(users)

    # Every exposure is the list that was served, by the run the user is assigned to.
    found = driver.execute_query(
        "MATCH (u:User)-[:SAW]->(e:Exposure {experiment: $x}) "
        "RETURN u.id AS user, e.run_id AS run, e.songs AS songs",
        x=exp.id,
        database_=db,
    ).records
    assert all((r["run"], list(r["songs"])) == served[r["user"]] for r in found)
    outcomes = {(r["user"], r["run"]): r for r in exposure_outcomes(driver, db, exp.id)}
    for u, (run, songs) in served.items():
        assert outcomes[(u, run)]["shown"] == len(set(songs))
        assert outcomes[(u, run)]["played"] == min(len(songs), 5 if run == challenger else 1)

    cli = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "models", "online"],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"the challenger {challenger} wins" in cli.stdout, cli.stdout
    assert world.run_id in cli.stdout and "95% CI" in cli.stdout
