"""Two user-task runs compared online: a traffic split, and the comparison of what users played.

An experiment is a file in the runs folder (``ONLINE.json``, beside ``ACTIVE``): its id, the
control run (the active one when it started), the challenger and the challenger's share of
users. Each user is assigned by a stable hash of (experiment id, user id), so a user sees one
run for the whole experiment and every API worker agrees without talking to the others.

The API records every list it serves during an experiment as an ``Exposure`` in Neo4j. The
comparison counts, per run, the share of exposed songs that the user played after first being
shown them (from posted plays). Users are the unit that was randomised, so the confidence
interval comes from resampling users (a bootstrap over users), not songs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from spotify_engine.errors import ModelError

ONLINE_FILE = "ONLINE.json"


@dataclass(frozen=True)
class OnlineExperiment:
    """A running comparison of two user-task runs."""

    id: str
    control: str
    challenger: str
    share: float
    started: str

    def arm(self, user_id: str) -> str:
        """The run this user is served: the challenger for a stable ``share`` of users."""
        digest = hashlib.sha256(f"{self.id}/{user_id}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64
        return self.challenger if u < self.share else self.control

    @property
    def runs(self) -> tuple[str, str]:
        return (self.control, self.challenger)


def get_online(runs_root: Path) -> OnlineExperiment | None:
    """The running experiment, or None."""
    path = Path(runs_root) / ONLINE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"{path} is unreadable ({exc})",
            hint="stop it with: spotify-engine models online --stop",
        ) from None
    return OnlineExperiment(**data)


def start_online(
    runs_root: Path, control: str, challenger: str, share: float = 0.5
) -> OnlineExperiment:
    """Start an experiment (replacing none: stop the running one first)."""
    if not 0.0 < share < 1.0:
        raise ModelError(f"share must be between 0 and 1 (exclusive), not {share}")
    if control == challenger:
        raise ModelError(
            f"the challenger {challenger} is already the active run",
            hint="pass another user-task run (spotify-engine models list)",
        )
    if get_online(runs_root) is not None:
        raise ModelError(
            "an online experiment is already running",
            hint="see it with: spotify-engine models online; stop it with --stop",
        )
    now = datetime.now(UTC)
    exp = OnlineExperiment(
        id=f"online-{now.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}",
        control=control,
        challenger=challenger,
        share=float(share),
        started=now.isoformat(timespec="seconds"),
    )
    path = Path(runs_root) / ONLINE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(exp), indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: a worker never reads half a file
    return exp


def stop_online(runs_root: Path) -> OnlineExperiment | None:
    """Stop the running experiment (its exposures stay in the graph); returns it."""
    exp = get_online(runs_root)
    if exp is not None:
        (Path(runs_root) / ONLINE_FILE).unlink(missing_ok=True)
    return exp


def compare_online(
    rows: Iterable[Mapping[str, Any]],
    runs: tuple[str, str],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Per run: users, songs shown, songs played after being shown, their share and its CI;
    and the challenger's share minus the control's, with its CI.

    ``rows`` are per (user, run): ``user``, ``run``, ``shown`` (distinct songs shown),
    ``played`` (of those, played after the first time shown). The CI is a percentile
    bootstrap over users within each run (the share is a ratio of sums, so users with long
    lists weigh more, as they do in the point estimate).
    """
    per: dict[str, list[tuple[int, int]]] = {r: [] for r in runs}
    for row in rows:
        if row["run"] in per and row["shown"] > 0:
            per[row["run"]].append((int(row["shown"]), int(row["played"])))
    rng = np.random.default_rng(seed)
    alpha = (1.0 - level) / 2.0
    out: dict[str, Any] = {"runs": {}, "level": level, "resamples": resamples}
    boots: dict[str, np.ndarray] = {}
    for run in runs:
        a = np.asarray(per[run], dtype=np.float64).reshape(-1, 2)
        n = len(a)
        shown, played = (a[:, 0].sum(), a[:, 1].sum()) if n else (0.0, 0.0)
        share = played / shown if shown else float("nan")
        if n:
            idx = rng.integers(0, n, size=(resamples, n))
            b = a[idx]
            boots[run] = b[..., 1].sum(axis=1) / np.maximum(b[..., 0].sum(axis=1), 1.0)
            lo, hi = np.quantile(boots[run], [alpha, 1.0 - alpha])
        else:
            boots[run] = np.full(resamples, np.nan)
            lo = hi = float("nan")
        out["runs"][run] = {
            "users": n,
            "shown": int(shown),
            "played": int(played),
            "share": float(share),
            "ci": [float(lo), float(hi)],
        }
    control, challenger = runs
    diff = boots[challenger] - boots[control]
    point = out["runs"][challenger]["share"] - out["runs"][control]["share"]
    if np.isnan(diff).any():
        lo = hi = float("nan")
    else:
        lo, hi = (float(x) for x in np.quantile(diff, [alpha, 1.0 - alpha]))
    out["difference"] = {"value": float(point), "ci": [lo, hi]}
    if np.isnan(lo):
        verdict = "not enough exposures in both runs to compare"
    elif lo > 0:
        verdict = f"the challenger {challenger} wins"
    elif hi < 0:
        verdict = f"the control {control} wins"
    else:
        verdict = "no difference at this confidence yet"
    out["verdict"] = verdict
    return out
