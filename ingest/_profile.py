"""A profile of the listening data in the graph: plots and a short markdown report.

Why: a recommender trained on data that does not look like listening (no long tail, no daily
rhythm, one-song sessions) learns nothing useful, and a loader bug often shows as a strange
shape before it shows as a wrong number. The profile reads the graph (not the Parquet files),
so it shows what the models will see. Plots are drawn with matplotlib's ``Figure`` API on the
Agg canvas: no display, no global pyplot state.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import neo4j
import numpy as np

from graphdb import get_registry, graph_errors, graph_stats
from spotify_engine.errors import NotFound

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

PLOTS: tuple[str, ...] = ("genres", "user_plays", "long_tail", "session_lengths", "hours")
REPORT_FILE = "profile.md"


@dataclass(frozen=True)
class ProfileResult:
    """Where the profile went and the key numbers it found."""

    out_dir: Path
    report: Path
    plots: dict[str, Path]
    numbers: dict[str, Any]


def _one(driver: neo4j.Driver, database: str, name: str) -> dict[str, Any]:
    with graph_errors():
        records, _, _ = driver.execute_query(
            get_registry().query(name), database_=database, routing_=neo4j.RoutingControl.READ
        )
    return records[0].data()


def profile_graph(driver: neo4j.Driver, database: str, out_dir: Path) -> ProfileResult:
    """Write ``<plot>.png`` for each of :data:`PLOTS` and ``profile.md`` into ``out_dir``.

    Raises:
        NotFound: the graph holds no users and no songs.
    """
    stats = graph_stats(driver, database)
    if not stats.labels.get("User") and not stats.labels.get("Song"):
        raise NotFound(
            "the graph holds no users and no songs: nothing to profile",
            hint="load data first, e.g. `spotify-engine ingest synthetic`",
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    genres = _one(driver, database, "validate/list_genre_plays")["genres"]
    user_plays = np.asarray(_one(driver, database, "validate/list_user_plays")["plays"], float)
    song_plays = np.sort(
        np.asarray(_one(driver, database, "validate/list_song_plays")["plays"], float)
    )[::-1]
    sessions = _one(driver, database, "validate/list_session_lengths")
    session_plays = np.asarray(sessions["plays"], float)
    session_minutes = np.asarray([m for m in sessions["minutes"] if m is not None], float)
    hours = {
        int(h["hour"]): int(h["plays"])
        for h in _one(driver, database, "validate/count_play_hours")["hours"]
    }
    hour_plays = np.array([hours.get(h, 0) for h in range(24)], float)

    numbers = _numbers(stats.labels, stats.relationships, genres, user_plays, song_plays)
    numbers.update(_session_numbers(session_plays, session_minutes, hour_plays))

    draw = {
        "genres": lambda fig: _genres(fig, genres),
        "user_plays": lambda fig: _user_plays(fig, user_plays),
        "long_tail": lambda fig: _long_tail(fig, song_plays),
        "session_lengths": lambda fig: _sessions(fig, session_plays, session_minutes),
        "hours": lambda fig: _hours(fig, hour_plays),
    }
    from matplotlib.figure import Figure

    plots: dict[str, Path] = {}
    for name in PLOTS:
        fig = Figure(figsize=(8, 4.5), layout="constrained")
        draw[name](fig)
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100)
        plots[name] = path
    report = out_dir / REPORT_FILE
    report.write_text(_markdown(numbers, plots), encoding="utf-8")
    log.info("profile written to %s", out_dir)
    return ProfileResult(out_dir=out_dir, report=report, plots=plots, numbers=numbers)


# -- numbers ----------------------------------------------------------------------------------


def _numbers(
    labels: dict[str, int],
    rels: dict[str, int],
    genres: list[dict[str, Any]],
    user_plays: np.ndarray,
    song_plays: np.ndarray,
) -> dict[str, Any]:
    plays = int(rels.get("PLAYED", 0))
    n: dict[str, Any] = {
        "users": labels.get("User", 0),
        "songs": labels.get("Song", 0),
        "artists": labels.get("Artist", 0),
        "genres": labels.get("Genre", 0),
        "playlists": labels.get("Playlist", 0),
        "sessions": labels.get("Session", 0),
        "plays": plays,
        "user-song pairs (LISTENED)": rels.get("LISTENED", 0),
        "transitions (FOLLOWED_BY)": rels.get("FOLLOWED_BY", 0),
        "playlist tracks (CONTAINS)": rels.get("CONTAINS", 0),
    }
    if user_plays.size:
        n["plays per user: median"] = float(np.median(user_plays))
        n["plays per user: mean"] = round(float(user_plays.mean()), 1)
        n["plays per user: max"] = int(user_plays.max())
    songs = n["songs"]
    if song_plays.size and songs:
        total = float(song_plays.sum())
        top = max(1, int(np.ceil(0.01 * songs)))
        n["songs ever played"] = f"{song_plays.size / songs:.1%}"
        n["share of plays of the top 1% songs"] = f"{song_plays[:top].sum() / total:.1%}"
    played = [g for g in genres if g["plays"]]
    if played:
        total = sum(float(g["plays"]) for g in played)
        n["top genre"] = f"{played[0]['name']} ({float(played[0]['plays']) / total:.1%} of plays)"
        median = statistics.median(float(g["plays"]) for g in played)
        n["top / median genre plays"] = round(float(played[0]["plays"]) / median, 1)
    return n


def _session_numbers(
    session_plays: np.ndarray, session_minutes: np.ndarray, hour_plays: np.ndarray
) -> dict[str, Any]:
    n: dict[str, Any] = {}
    if session_plays.size:
        n["plays per session: median"] = float(np.median(session_plays))
        n["plays per session: mean"] = round(float(session_plays.mean()), 1)
    if session_minutes.size:
        n["session minutes: median"] = round(float(np.median(session_minutes)), 1)
    if hour_plays.sum():
        n["peak hour (UTC)"] = int(hour_plays.argmax())
    return n


# -- plots ------------------------------------------------------------------------------------


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in the graph", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _genres(fig: Figure, genres: list[dict[str, Any]]) -> None:
    ax = fig.subplots()
    played = [g for g in genres if g["plays"]]
    if not played:
        _empty(ax, "genre plays")
        return
    names = [str(g["name"]) for g in played][::-1]
    values = [float(g["plays"]) for g in played][::-1]
    fig.set_size_inches(8, max(3.0, 0.22 * len(played) + 1.0))
    ax.barh(names, values, color="#1db954")
    ax.set_xlabel("plays (shared among a song's genres by weight)")
    ax.set_title("Genre distribution of plays")
    ax.tick_params(axis="y", labelsize=7)


def _user_plays(fig: Figure, user_plays: np.ndarray) -> None:
    ax = fig.subplots()
    positive = user_plays[user_plays > 0]
    if not positive.size:
        _empty(ax, "plays")
        return
    lo, hi = positive.min(), positive.max()
    bins = np.logspace(np.log10(lo), np.log10(hi * 1.0001 if hi > lo else lo + 1), 40)
    ax.hist(positive, bins=bins.tolist(), color="#1db954")
    ax.set_xscale("log")
    ax.set_xlabel("plays per user (log)")
    ax.set_ylabel("users")
    without = int((user_plays == 0).sum())
    ax.set_title(f"Plays per user ({positive.size:,} users; {without:,} without plays)")


def _long_tail(fig: Figure, song_plays: np.ndarray) -> None:
    ax = fig.subplots()
    if not song_plays.size:
        _empty(ax, "plays")
        return
    rank = np.arange(1, song_plays.size + 1)
    ax.loglog(rank, song_plays, color="#1db954", linewidth=1.5)
    ax.set_xlabel("song popularity rank (log)")
    ax.set_ylabel("plays (log)")
    ax.set_title(f"Long tail: plays by song rank ({song_plays.size:,} songs played)")
    ax.grid(True, which="major", alpha=0.3)


def _sessions(fig: Figure, session_plays: np.ndarray, session_minutes: np.ndarray) -> None:
    left, right = fig.subplots(1, 2)
    if not session_plays.size:
        _empty(left, "sessions")
        _empty(right, "sessions")
        return
    top = int(np.percentile(session_plays, 99)) + 1
    left.hist(
        np.minimum(session_plays, top), bins=np.arange(0.5, top + 1.5).tolist(), color="#1db954"
    )
    left.set_xlabel(f"plays per session (capped at p99 = {top})")
    left.set_ylabel("sessions")
    if session_minutes.size:
        cap = float(np.percentile(session_minutes, 99))
        right.hist(np.minimum(session_minutes, cap), bins=50, color="#535353")
        right.set_xlabel(f"minutes per session (capped at p99 = {cap:.0f})")
    else:
        _empty(right, "session durations")
    fig.suptitle(f"Session lengths ({session_plays.size:,} sessions)")


def _hours(fig: Figure, hour_plays: np.ndarray) -> None:
    ax = fig.subplots()
    if not hour_plays.sum():
        _empty(ax, "timestamped plays")
        return
    ax.bar(np.arange(24), hour_plays, color="#1db954")
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour of day (UTC)")
    ax.set_ylabel("plays")
    ax.set_title("Plays by hour of day")


# -- report -----------------------------------------------------------------------------------

_CAPTIONS = {
    "genres": "Genre distribution of plays",
    "user_plays": "Plays per user (log histogram)",
    "long_tail": "Long tail: song popularity rank vs plays (log-log)",
    "session_lengths": "Session lengths",
    "hours": "Hour of day",
}


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.1f}" if not v.is_integer() else f"{int(v):,}"
    return str(v).replace("|", "\\|")


def _markdown(numbers: dict[str, Any], plots: dict[str, Path]) -> str:
    lines = ["# Data profile", "", "| measure | value |", "|---|---:|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in numbers.items()]
    lines.append("")
    for name, path in plots.items():
        lines += [f"## {_CAPTIONS[name]}", "", f"![{_CAPTIONS[name]}]({path.name})", ""]
    return "\n".join(lines)
