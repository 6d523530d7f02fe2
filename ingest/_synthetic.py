"""Synthetic listening data with planted, recoverable taste, and the oracle that knows it.

Why this exists: the reference project's generator planted genre preferences that did not beat
a popularity ranking, so nothing trained on it could show personal recommendation. Here every
fresh play is drawn from a per-user distribution whose static part is written to ``truth.json``
and recomputed exactly by :func:`oracle_scores`. An evaluator therefore knows the best
achievable ranking (the ceiling) and can check that a model learns taste, not just popularity.

One fresh play of user u picks song s with probability (session dynamics aside)::

    taste(u, s) = (sum_g pref[u, g] * w(s, g)) ** sharpness
                  * popularity(s) ** alpha
                  * (1 + favourite_boost * [artist(s) in favourites(u)])
    p(s | u)    = (1 - eps_u) * taste(u, s) / Z_u  +  eps_u * popularity(s) ** alpha / Z_pop

``eps_u`` is the user's exploration rate (plays drawn by popularity alone), ``Z_u`` and ``Z_pop``
normalise over the whole generated catalogue and are stored in the truth file, so the oracle
gives exact probabilities for any subset of songs. Tastes do not drift: with a static planted
distribution the oracle is the best ranking for every period, which is what makes it a ceiling.

On top of fresh plays, sessions add what a model can learn from history but the oracle must not
contain: same-artist runs (the next album track or another song by the artist of the run's first
play), repeats of songs the user played through before, and skips that are likelier for songs off
the user's taste (skipped plays stop before 30 s; played-through ones run at least 30 s).

Pure numpy and pyarrow; it never talks to Neo4j. Tables follow ``ingest._tables.SCHEMAS`` and
are written whole (vectorised), with ``report.json`` and an empty ``quarantine.jsonl`` as a
``TableSink`` would leave them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ingest._sink import IngestReport
from ingest._tables import AUDIO_FEATURES, SCHEMAS

logger = logging.getLogger(__name__)

#: Exponent on song popularity in the taste and exploration distributions.
ALPHA = 1.0
#: Exponent on the genre match: > 1 makes off-genre songs much rarer than on-genre ones.
SHARPNESS = 2.0
#: Songs by a favourite artist are (1 + boost) times as likely.
FAVOURITE_BOOST = 3.0
#: A play shorter than this is a skip; a play at least this long is not.
SKIP_MS = 30_000
TRUTH_FILE = "truth.json"

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_USER_CHUNK = 128

# name, family, danceability, energy, valence, tempo, acousticness, instrumentalness,
# speechiness, loudness (dB), median duration (s). Ordered by popularity rank (Zipf).
_GENRE_ROWS: tuple[tuple[Any, ...], ...] = (
    ("Pop", "pop", 0.70, 0.68, 0.58, 118, 0.18, 0.02, 0.07, -6.0, 205),
    ("Hip-Hop", "hiphop", 0.76, 0.65, 0.50, 98, 0.14, 0.01, 0.26, -6.5, 200),
    ("Rock", "rock", 0.50, 0.78, 0.50, 125, 0.10, 0.05, 0.05, -6.0, 235),
    ("Electronic", "electronic", 0.66, 0.80, 0.42, 126, 0.06, 0.45, 0.06, -6.5, 250),
    ("R&B", "rnb", 0.68, 0.55, 0.52, 100, 0.22, 0.02, 0.09, -7.0, 215),
    ("Latin", "latin", 0.74, 0.72, 0.66, 104, 0.20, 0.02, 0.08, -5.5, 210),
    ("Indie Rock", "rock", 0.52, 0.70, 0.46, 122, 0.18, 0.08, 0.05, -7.0, 225),
    ("Dance", "electronic", 0.75, 0.82, 0.58, 124, 0.06, 0.15, 0.06, -5.0, 210),
    ("Country", "folk", 0.60, 0.64, 0.58, 112, 0.30, 0.01, 0.04, -6.5, 200),
    ("Alternative", "rock", 0.50, 0.70, 0.42, 120, 0.15, 0.06, 0.05, -6.5, 230),
    ("K-Pop", "pop", 0.70, 0.78, 0.60, 122, 0.12, 0.01, 0.07, -4.5, 200),
    ("Soul", "rnb", 0.60, 0.52, 0.60, 100, 0.35, 0.03, 0.05, -8.0, 220),
    ("Jazz", "jazz", 0.55, 0.38, 0.52, 110, 0.65, 0.45, 0.05, -11.0, 330),
    ("Metal", "rock", 0.40, 0.93, 0.30, 132, 0.02, 0.12, 0.07, -5.0, 270),
    ("House", "electronic", 0.78, 0.80, 0.55, 124, 0.05, 0.55, 0.06, -7.0, 330),
    ("Reggaeton", "latin", 0.80, 0.75, 0.68, 95, 0.12, 0.01, 0.10, -4.5, 200),
    ("Folk", "folk", 0.50, 0.38, 0.46, 110, 0.75, 0.10, 0.04, -11.0, 220),
    ("Classical", "classical", 0.30, 0.18, 0.30, 100, 0.92, 0.88, 0.04, -20.0, 420),
    ("Indie Pop", "pop", 0.62, 0.58, 0.55, 118, 0.30, 0.05, 0.05, -8.0, 210),
    ("Trap", "hiphop", 0.78, 0.66, 0.40, 140, 0.10, 0.02, 0.28, -6.0, 185),
    ("Punk", "rock", 0.45, 0.92, 0.48, 160, 0.03, 0.03, 0.07, -5.0, 155),
    ("Techno", "electronic", 0.70, 0.85, 0.30, 130, 0.03, 0.80, 0.05, -8.0, 380),
    ("Blues", "jazz", 0.52, 0.50, 0.50, 104, 0.55, 0.15, 0.05, -10.0, 260),
    ("Funk", "rnb", 0.80, 0.68, 0.75, 108, 0.18, 0.15, 0.07, -8.0, 240),
    ("Reggae", "latin", 0.78, 0.55, 0.72, 90, 0.20, 0.05, 0.10, -8.0, 230),
    ("Lo-Fi", "chill", 0.65, 0.35, 0.45, 85, 0.60, 0.80, 0.07, -12.0, 150),
    ("Ambient", "chill", 0.25, 0.20, 0.18, 90, 0.80, 0.92, 0.04, -20.0, 360),
    ("Singer-Songwriter", "folk", 0.50, 0.36, 0.42, 112, 0.78, 0.03, 0.04, -10.0, 220),
    ("Drum and Bass", "electronic", 0.55, 0.92, 0.38, 174, 0.02, 0.55, 0.07, -5.0, 300),
    ("Gospel", "rnb", 0.52, 0.55, 0.62, 104, 0.45, 0.02, 0.06, -8.0, 260),
    ("Soundtrack", "classical", 0.30, 0.35, 0.25, 105, 0.65, 0.85, 0.04, -16.0, 190),
    ("Afrobeats", "latin", 0.80, 0.70, 0.72, 108, 0.18, 0.04, 0.10, -6.0, 200),
    ("Disco", "pop", 0.80, 0.75, 0.80, 118, 0.10, 0.10, 0.05, -7.0, 250),
    ("Bossa Nova", "jazz", 0.62, 0.30, 0.58, 120, 0.75, 0.25, 0.05, -13.0, 200),
    ("Grunge", "rock", 0.40, 0.82, 0.32, 118, 0.08, 0.04, 0.05, -6.0, 245),
)
GENRE_NAMES: tuple[str, ...] = tuple(r[0] for r in _GENRE_ROWS)
_FEATURE_SD = np.array([0.10, 0.10, 0.15, 12.0, 0.10, 0.10, 0.04, 2.0])
_FEATURE_LO = np.array([0.0, 0.0, 0.0, 50.0, 0.0, 0.0, 0.0, -40.0])
_FEATURE_HI = np.array([1.0, 1.0, 1.0, 210.0, 1.0, 1.0, 1.0, -1.0])


@dataclass(frozen=True)
class _UserType:
    """How one kind of listener behaves; per-user values scatter around these."""

    name: str
    share: float
    activity: float  # mean activity level: relative plays per day
    n_genres: tuple[int, int]  # preferred genres, inclusive range
    concentration: float  # Dirichlet concentration over the preferred genres
    genre_focus: float  # exponent on genre popularity when choosing genres (mainstream > 1)
    exploration: float  # share of fresh plays drawn by popularity alone
    n_favourites: tuple[int, int]
    day_prob: float  # chance of listening on a given weekday
    sessions_per_day: float
    weekend: float  # multiplier on day_prob at weekends
    skip_base: float
    continue_prob: float  # same-artist continuation
    repeat_prob: float  # replay of a song played through before
    playlists: float  # relative playlist rate


_T = _UserType
# name, share, activity, n_genres, concentration, genre_focus, exploration, n_favourites,
# day_prob, sessions_per_day, weekend, skip_base, continue_prob, repeat_prob, playlists
_USER_TYPES: tuple[_UserType, ...] = (
    _T("casual", .30, .25, (1, 3), 1.0, 1.2, .10, (1, 3), .35, 1.2, 1.4, .10, .20, .20, .5),
    _T("regular", .28, .55, (2, 4), 1.0, 1.0, .10, (2, 6), .65, 1.6, .9, .08, .25, .15, 1.0),
    _T("explorer", .12, .70, (4, 7), 2.0, .5, .30, (2, 5), .70, 1.8, 1.2, .15, .15, .05, 1.6),
    _T("genre_loyal", .12, .60, (1, 2), 1.0, .8, .03, (4, 10), .70, 1.5, 1., .05, .35, .15, 1.3),
    _T("mainstream", .10, .50, (2, 3), 1.0, 2.0, .25, (1, 4), .60, 1.5, 1.2, .10, .20, .15, .7),
    _T("power", .08, 1.0, (3, 5), 1.0, 1.0, .12, (4, 8), .90, 2.5, 1.0, .08, .25, .12, 1.5),
)  # fmt: skip
USER_TYPES: tuple[str, ...] = tuple(t.name for t in _USER_TYPES)

# Typical listening hours (commute, lunch, afternoon, evening, late night) and how common each is.
_HOUR_MODES = np.array([7.5, 12.5, 17.5, 20.5, 23.0])
_HOUR_MODE_P = np.array([0.20, 0.15, 0.20, 0.30, 0.15])

_ADJ = (
    "Midnight", "Golden", "Electric", "Silent", "Velvet", "Neon", "Broken", "Wild", "Lonely",
    "Crimson", "Silver", "Hidden", "Endless", "Burning", "Frozen", "Distant", "Sweet", "Faded",
    "Restless", "Blue", "Paper", "Hollow", "Bright", "Secret", "Little", "Northern", "Lucky",
    "Savage", "Gentle", "Cosmic",
)  # fmt: skip
_NOUN = (
    "Heart", "River", "Dreams", "Lights", "Highway", "Summer", "Ocean", "Shadows", "Fire", "Echo",
    "Garden", "City", "Rain", "Stars", "Horizon", "Mirror", "Thunder", "Wolves", "Roses",
    "Satellite", "Tide", "Skyline", "Hearts", "Waves", "Machine", "Harbor", "Signal", "Parade",
    "Orchid", "Avenue",
)  # fmt: skip
_FIRST = (
    "Ava", "Leo", "Mia", "Noah", "Zoe", "Kai", "Luna", "Omar", "Iris", "Theo", "Nina", "Jude",
    "Sofia", "Ezra", "Maya", "Felix", "Aria", "Milo", "Lena", "Hugo",
)  # fmt: skip
_LAST = (
    "Reyes", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Silva", "Novak",
    "Brennan", "Adeyemi", "Castillo", "Fischer", "Ito", "Marsh", "Quinn", "Rossi", "Vega",
    "Wilde", "Young",
)  # fmt: skip
_PLAYLIST_TEMPLATES = (
    "{g} Mix", "{g} Essentials", "Late night {g}", "Morning {g}", "Chill {g}", "{g} Workout",
    "My {g}", "{g} Favourites", "Road trip {g}", "{g} Deep Cuts",
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and shape of a generated data set; the same config and seed give the same tables.

    Args:
        users: listeners (default 1000).
        songs: catalogue size (default 5000); at least ``artists``, every artist has a song.
        artists: default 500; each has 1-3 genres and one or more albums.
        genres: 1..35 (default 35), the most popular first (Zipf).
        days: length of the listening period (default 30).
        seed: every random draw derives from it.
        playlists_per_user: mean user playlists per user (default 0.5).
        start: first day of the period, ISO date or datetime, UTC when no offset is given.
        mean_plays_per_user: mean plays per user over the period (default 250).
    """

    users: int = 1000
    songs: int = 5000
    artists: int = 500
    genres: int = 35
    days: int = 30
    seed: int = 42
    playlists_per_user: float = 0.5
    start: str = "2026-01-01"
    mean_plays_per_user: int = 250

    def __post_init__(self) -> None:
        if not 1 <= self.genres <= len(_GENRE_ROWS):
            raise ValueError(f"genres must be 1..{len(_GENRE_ROWS)} (got {self.genres})")
        for name in ("users", "artists", "days", "mean_plays_per_user"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.songs < self.artists:
            raise ValueError(
                f"songs must be >= artists (got songs={self.songs}, artists={self.artists})"
            )
        if self.playlists_per_user < 0:
            raise ValueError(f"playlists_per_user must be >= 0 (got {self.playlists_per_user})")
        _start_ms(self.start)

    @property
    def start_ms(self) -> int:
        """Start of the period as UTC epoch milliseconds."""
        return _start_ms(self.start)

    @classmethod
    def for_plays(cls, plays: int, *, users: int, **fields: Any) -> SyntheticConfig:
        """A config whose plays total about ``plays``: ``mean_plays_per_user = plays / users``
        (rounded, at least 1). The generated total lands within a few per cent of it (per-user
        activity varies, sessions are drawn), e.g. 20,000 users and 8,000,000 plays.

        Raises:
            ValueError: ``plays`` < ``users`` (every user gets at least one play) or a field
                :class:`SyntheticConfig` refuses.
        """
        if users < 1:
            raise ValueError(f"users must be >= 1 (got {users})")
        if plays < users:
            raise ValueError(f"plays must be >= users (got plays={plays}, users={users})")
        return cls(users=users, mean_plays_per_user=max(1, round(plays / users)), **fields)


def _start_ms(start: str) -> int:
    try:
        dt = datetime.fromisoformat(start)
    except ValueError as exc:
        raise ValueError(f"start must be an ISO date such as 2026-01-01 (got {start!r})") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote: row counts per table, where, and how long it took."""

    out_dir: Path
    rows: Mapping[str, int]
    seconds: float
    truth_path: Path


@dataclass(frozen=True)
class UserTruth:
    """One user's planted taste: what the oracle needs, and what explanations can be checked on."""

    user_type: str
    activity_level: float
    genres: Mapping[str, float]  # genre_id -> preference weight; the weights sum to 1
    favourite_artists: tuple[str, ...]
    exploration: float  # eps_u
    taste_norm: float  # Z_u over the generated catalogue

    def top_genres(self, n: int = 1) -> list[str]:
        """The user's ``n`` most preferred genre ids, strongest first."""
        return [g for g, _ in sorted(self.genres.items(), key=lambda kv: -kv[1])[:n]]


@dataclass(frozen=True)
class Truth:
    """Contents of ``truth.json``: the generator's parameters and every user's planted taste."""

    config: SyntheticConfig
    alpha: float
    sharpness: float
    favourite_boost: float
    popularity_norm: float  # Z_pop over the generated catalogue
    genres: Mapping[str, str]  # genre_id -> name
    users: Mapping[str, UserTruth]


# --------------------------------------------------------------------------- ids and names


def _ids(prefix: str, width: int, n: int) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _genre_ids(n: int) -> list[str]:
    return _ids("G", 2, n)


def _pick(words: Sequence[str], idx: np.ndarray) -> list[str]:
    return [words[i] for i in idx]


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    kind = rng.random(n)
    a, b = rng.integers(0, len(_ADJ), n), rng.integers(0, len(_NOUN), n)
    f, la = rng.integers(0, len(_FIRST), n), rng.integers(0, len(_LAST), n)
    out = []
    for i in range(n):
        if kind[i] < 0.4:
            out.append(f"{_FIRST[f[i]]} {_LAST[la[i]]}")
        elif kind[i] < 0.75:
            out.append(f"The {_ADJ[a[i]]} {_NOUN[b[i]]}")
        else:
            out.append(f"{_ADJ[a[i]]} {_NOUN[b[i]]}")
    return out


def _title_names(rng: np.random.Generator, n: int) -> list[str]:
    kind = rng.random(n)
    a, b = rng.integers(0, len(_ADJ), n), rng.integers(0, len(_NOUN), n)
    return [_NOUN[b[i]] if kind[i] < 0.25 else f"{_ADJ[a[i]]} {_NOUN[b[i]]}" for i in range(n)]


# --------------------------------------------------------------------------- catalogue


@dataclass
class _Catalogue:
    genre_pop: np.ndarray  # [G] popularity, max 1 (Zipf)
    genre_family: list[str]
    artist_genres: np.ndarray  # [A, 3] genre index, -1 pads
    artist_gw: np.ndarray  # [A, 3] weights, rows sum to 1
    artist_pop: np.ndarray  # [A] max 1
    album_artist: np.ndarray  # [AL]
    song_artist: np.ndarray  # [S]
    song_album: np.ndarray  # [S]
    song_pop: np.ndarray  # [S] max 1
    duration_ms: np.ndarray  # [S] int64
    features: np.ndarray  # [S, 8]
    sg_idx: np.ndarray  # [S, 3] genre index, -1 pads
    sg_w: np.ndarray  # [S, 3] weights, rows sum to 1
    weights: np.ndarray  # [S, G] dense song-genre weights
    seq: np.ndarray  # song indices ordered by artist, album, track
    seq_pos: np.ndarray  # [S] position of each song in ``seq``
    art_start: np.ndarray  # [A] first position of each artist in ``seq``
    art_len: np.ndarray  # [A]
    artist_names: list[str]
    album_names: list[str]
    song_names: list[str]


def _catalogue(cfg: SyntheticConfig, rng: np.random.Generator) -> _Catalogue:
    """Genres, artists, albums and songs: popularity heavy-tailed, features by genre."""
    n_g, n_a, n_s = cfg.genres, cfg.artists, cfg.songs
    rows = _GENRE_ROWS[:n_g]
    genre_pop = 1.0 / np.arange(1, n_g + 1)
    family = [r[1] for r in rows]
    members: dict[str, list[int]] = {}
    for g, fam in enumerate(family):
        members.setdefault(fam, []).append(g)

    # Artists: a primary genre (every genre gets one while artists last), 0-2 related extras.
    primary = np.empty(n_a, dtype=np.int64)
    k = min(n_g, n_a)
    primary[:k] = np.arange(k)
    p_primary = genre_pop**0.8
    primary[k:] = rng.choice(n_g, size=n_a - k, p=p_primary / p_primary.sum())
    primary = rng.permutation(primary)
    n_extra = rng.choice(3, size=n_a, p=[0.35, 0.45, 0.20])
    artist_genres = np.full((n_a, 3), -1, dtype=np.int64)
    artist_gw = np.zeros((n_a, 3))
    for a in range(n_a):
        chosen = [int(primary[a])]
        for _ in range(int(n_extra[a])):
            if len(chosen) >= n_g:
                break
            same = [g for g in members[family[chosen[0]]] if g not in chosen]
            if same and rng.random() < 0.7:
                g = same[int(rng.integers(len(same)))]
            else:
                p = genre_pop.copy()
                p[chosen] = 0.0
                g = int(rng.choice(n_g, p=p / p.sum()))
            chosen.append(g)
        artist_genres[a, : len(chosen)] = chosen
        artist_gw[a, 0] = 1.0
        artist_gw[a, 1 : len(chosen)] = rng.uniform(0.25, 0.6, len(chosen) - 1)
    artist_gw /= artist_gw.sum(1, keepdims=True)
    n_ag = (artist_genres >= 0).sum(1)

    artist_raw = np.exp(rng.normal(0.0, 1.0, n_a)) * genre_pop[primary] ** 0.3
    productivity = np.exp(rng.normal(0.0, 0.5, n_a)) * artist_raw**0.3
    counts = 1 + rng.multinomial(n_s - n_a, productivity / productivity.sum())
    art_start = np.concatenate([[0], np.cumsum(counts)[:-1]])

    # Songs, first grouped by artist (then album, then track), shuffled into id order below.
    g_artist = np.repeat(np.arange(n_a), counts)
    k_in = np.arange(n_s) - art_start[g_artist]
    n_alb = np.minimum(counts, 1 + rng.poisson(1.5, n_a))
    alb_start = np.concatenate([[0], np.cumsum(n_alb)[:-1]])
    g_album = alb_start[g_artist] + k_in * n_alb[g_artist] // counts[g_artist]
    album_artist = np.repeat(np.arange(n_a), n_alb)

    by_artist = np.lexsort((rng.random(n_s), g_artist))
    rank = np.empty(n_s, dtype=np.int64)
    rank[by_artist] = np.arange(n_s) - art_start[g_artist[by_artist]]
    g_raw = artist_raw[g_artist] * (rank + 1.0) ** -0.9 * np.exp(rng.normal(0.0, 0.4, n_s))

    # Song genres: drawn from the artist's; the artist's first track keeps the primary genre.
    n_own = n_ag[g_artist]
    r1, r2, r3, r4 = rng.random((4, n_s))
    slot1 = np.where(
        (n_own > 1) & (r1 < 0.25) & (k_in > 0), 1 + np.floor(r2 * (n_own - 1)).astype(int), 0
    )
    two = (n_own > 1) & (r3 < 0.5)
    slot2 = (slot1 + 1 + np.floor(r4 * (n_own - 1)).astype(int)) % n_own
    sg_idx = np.full((n_s, 3), -1, dtype=np.int64)
    sg_w = np.zeros((n_s, 3))
    sg_idx[:, 0] = artist_genres[g_artist, slot1]
    sg_w[:, 0] = 1.0
    sg_idx[two, 1] = artist_genres[g_artist[two], slot2[two]]
    sg_w[two, 1] = rng.uniform(0.2, 0.6, n_s)[two]
    cross_g = rng.integers(0, n_g, n_s)
    cross = (rng.random(n_s) < 0.05) & (cross_g != sg_idx[:, 0]) & (cross_g != sg_idx[:, 1])
    sg_idx[cross, 2] = cross_g[cross]
    sg_w[cross, 2] = 0.15
    sg_w /= sg_w.sum(1, keepdims=True)
    weights = np.zeros((n_s, n_g))
    for j in range(3):
        ok = sg_idx[:, j] >= 0
        weights[np.flatnonzero(ok), sg_idx[ok, j]] = sg_w[ok, j]

    # Audio features and durations follow the song's genre mix, plus artist and song noise.
    prof = np.array([r[2:10] for r in rows], dtype=np.float64)
    mean = weights @ prof
    noise = rng.normal(0.0, 1.0, (n_s, 8)) * _FEATURE_SD
    artist_off = rng.normal(0.0, 0.5, (n_a, 8)) * _FEATURE_SD
    feats = mean + artist_off[g_artist] + noise
    feats[:, 7] += 8.0 * (feats[:, 1] - mean[:, 1])  # louder when more energetic
    feats = np.clip(feats, _FEATURE_LO, _FEATURE_HI)
    log_med = weights @ np.log(np.array([r[10] for r in rows], dtype=np.float64))
    dur_s = np.clip(np.exp(log_med + rng.normal(0.0, 0.25, n_s)), 60.0, 1200.0)
    g_duration = np.round(dur_s * 1000.0).astype(np.int64)

    order = rng.permutation(n_s)  # final song i is grouped song order[i]
    seq = np.empty(n_s, dtype=np.int64)
    seq[order] = np.arange(n_s)
    song_raw = g_raw[order]
    return _Catalogue(
        genre_pop=genre_pop,
        genre_family=family,
        artist_genres=artist_genres,
        artist_gw=artist_gw,
        artist_pop=artist_raw / artist_raw.max(),
        album_artist=album_artist,
        song_artist=g_artist[order],
        song_album=g_album[order],
        song_pop=song_raw / song_raw.max(),
        duration_ms=g_duration[order],
        features=feats[order],
        sg_idx=sg_idx[order],
        sg_w=sg_w[order],
        weights=weights[order],
        seq=seq,
        seq_pos=order,
        art_start=art_start,
        art_len=counts,
        artist_names=_artist_names(rng, n_a),
        album_names=_title_names(rng, len(album_artist)),
        song_names=_title_names(rng, n_s),
    )


# --------------------------------------------------------------------------- users


@dataclass
class _Users:
    type_idx: np.ndarray  # [U]
    activity: np.ndarray  # [U]
    pref: np.ndarray  # [U, G] rows sum to 1
    favourites: list[np.ndarray]  # artist indices per user
    fav_mask: np.ndarray  # [U, A] bool
    eps: np.ndarray  # [U]
    peaks: np.ndarray  # [U, 3] preferred hours
    peak_w: np.ndarray  # [U, 3] cumulative choice weights
    weekend: np.ndarray  # [U]


def _users(cfg: SyntheticConfig, cat: _Catalogue, rng: np.random.Generator) -> _Users:
    """Types, activity, Dirichlet genre preferences, favourite artists and listening hours."""
    n_u, n_g, n_a = cfg.users, cfg.genres, cfg.artists
    shares = np.array([t.share for t in _USER_TYPES])
    type_idx = rng.choice(len(_USER_TYPES), size=n_u, p=shares / shares.sum())
    activity = np.clip(
        np.array([t.activity for t in _USER_TYPES])[type_idx] * np.exp(rng.normal(0, 0.3, n_u)),
        0.02,
        1.0,
    )
    has_songs = cat.weights.sum(0) > 0
    members: dict[str, list[int]] = {}
    for g, fam in enumerate(cat.genre_family):
        if has_songs[g]:
            members.setdefault(fam, []).append(g)

    artist_w = np.zeros((n_a, n_g))
    for j in range(3):
        ok = cat.artist_genres[:, j] >= 0
        artist_w[np.flatnonzero(ok), cat.artist_genres[ok, j]] = cat.artist_gw[ok, j]

    pref = np.zeros((n_u, n_g))
    favourites: list[np.ndarray] = []
    fav_mask = np.zeros((n_u, n_a), dtype=bool)
    for u in range(n_u):
        ut = _USER_TYPES[type_idx[u]]
        base = np.where(has_songs, cat.genre_pop**ut.genre_focus, 0.0)
        k = min(int(rng.integers(ut.n_genres[0], ut.n_genres[1] + 1)), int(has_songs.sum()))
        same_family = 0.2 if ut.name == "explorer" else 0.55
        chosen: list[int] = []
        while len(chosen) < k:
            related = [g for c in chosen for g in members[cat.genre_family[c]] if g not in chosen]
            if related and rng.random() < same_family:
                g = related[int(rng.integers(len(related)))]
            else:
                p = base.copy()
                p[chosen] = 0.0
                g = int(rng.choice(n_g, p=p / p.sum()))
            chosen.append(g)
        w = np.sort(rng.dirichlet(np.full(k, ut.concentration)))[::-1]
        pref[u, chosen] = w
        # Favourites: artists of the user's genres, popular ones likelier (Gumbel top-k).
        fit = artist_w @ pref[u]
        n_fav = min(
            int(rng.integers(ut.n_favourites[0], ut.n_favourites[1] + 1)), int((fit > 0).sum())
        )
        with np.errstate(divide="ignore"):
            key = np.log(fit * cat.artist_pop**0.5) + rng.gumbel(size=n_a)
        fav = np.sort(np.argpartition(-key, n_fav - 1)[:n_fav]) if n_fav > 0 else np.zeros(0, int)
        favourites.append(fav)
        fav_mask[u, fav] = True

    eps = np.clip(
        np.array([t.exploration for t in _USER_TYPES])[type_idx] * np.exp(rng.normal(0, 0.3, n_u)),
        0.01,
        0.6,
    )
    n_peaks = rng.integers(1, 4, n_u)
    peaks = _HOUR_MODES[rng.choice(len(_HOUR_MODES), size=(n_u, 3), p=_HOUR_MODE_P)]
    peaks = peaks + rng.normal(0.0, 0.75, (n_u, 3))
    peak_w = rng.dirichlet(np.ones(3), n_u) * (np.arange(3)[None, :] < n_peaks[:, None])
    peak_w = np.cumsum(peak_w / peak_w.sum(1, keepdims=True), axis=1)
    weekend = np.array([t.weekend for t in _USER_TYPES])[type_idx] * np.exp(
        rng.normal(0.0, 0.25, n_u)
    )
    return _Users(type_idx, activity, pref, favourites, fav_mask, eps, peaks, peak_w, weekend)


# --------------------------------------------------------------------------- taste


def _taste(
    pref: np.ndarray,
    fav: np.ndarray,
    weights: np.ndarray,
    pop_alpha: np.ndarray,
    sharpness: float,
    boost: float,
) -> np.ndarray:
    """Unnormalised static taste [users, songs]; one function so generator and oracle agree.

    ``pref`` [U, G], ``fav`` [U, S] (favourite-artist flags), ``weights`` [S, G] song-genre
    weights, ``pop_alpha`` [S] popularity ** alpha.
    """
    t = np.power(pref @ weights.T, sharpness)
    t *= pop_alpha
    t *= 1.0 + boost * fav
    return t


# --------------------------------------------------------------------------- plays


@dataclass
class _Plays:
    user: np.ndarray
    song: np.ndarray
    session: np.ndarray  # global session index
    pos: np.ndarray
    ts: np.ndarray
    ms_played: np.ndarray
    skipped: np.ndarray
    session_user: np.ndarray
    session_index: np.ndarray  # index within its user, by time
    taste_norm: np.ndarray  # Z_u
    pop_norm: float


def _sessions(
    cfg: SyntheticConfig, users: _Users, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Active days, sessions per day, their lengths and start times, sorted by user and time."""
    n_u, n_d = cfg.users, cfg.days
    types = users.type_idx
    day_prob = np.array([t.day_prob for t in _USER_TYPES])[types]
    sess_per_day = np.array([t.sessions_per_day for t in _USER_TYPES])[types]
    weekday = (datetime.fromtimestamp(cfg.start_ms / 1000, UTC).weekday() + np.arange(n_d)) % 7
    is_weekend = weekday >= 5
    p_day = np.clip(
        day_prob[:, None] * np.where(is_weekend[None, :], users.weekend[:, None], 1.0), 0.0, 0.97
    )
    active = rng.random((n_u, n_d)) < p_day
    idle = np.flatnonzero(~active.any(1))
    active[idle, rng.integers(0, n_d, len(idle))] = True

    target = cfg.mean_plays_per_user * users.activity / users.activity.mean()
    mean_len = np.maximum(target / (p_day.sum(1) * sess_per_day), 1.0)
    uu, dd = np.nonzero(active)
    n_sess = 1 + rng.poisson(sess_per_day[uu] - 1.0)
    s_user = np.repeat(uu, n_sess)
    s_day = np.repeat(dd, n_sess)
    s_len = np.minimum(rng.geometric(1.0 / mean_len[s_user]), 400)

    which = (rng.random(len(s_user))[:, None] < users.peak_w[s_user]).argmax(1)
    hour = users.peaks[s_user, which] + 1.5 * is_weekend[s_day] + rng.normal(0, 1.2, len(s_user))
    start = cfg.start_ms + s_day * _DAY_MS + (np.mod(hour, 24.0) * _HOUR_MS).astype(np.int64)
    order = np.lexsort((start, s_user))
    return s_user[order], start[order], s_len[order]


def _plays(
    cfg: SyntheticConfig,
    cat: _Catalogue,
    users: _Users,
    rng: np.random.Generator,
    progress: Callable[[str, float], None] | None,
) -> _Plays:
    """Fresh draws from the planted distribution, then runs, repeats, skips and timestamps."""
    n_u, n_s = cfg.users, cfg.songs
    s_user, s_start, s_len = _sessions(cfg, users, rng)
    n_sess = len(s_user)
    user_sess_first = np.searchsorted(s_user, np.arange(n_u))
    session_index = np.arange(n_sess) - user_sess_first[s_user]

    session = np.repeat(np.arange(n_sess), s_len)
    user = s_user[session]
    n = len(session)
    sess_first = np.concatenate([[0], np.cumsum(s_len)[:-1]])
    pos = np.arange(n) - sess_first[session]
    user_first = np.searchsorted(user, np.arange(n_u + 1))

    # Fresh draws, a chunk of users at a time: inverse-CDF over each user's p(s | u).
    pop_alpha = cat.song_pop**ALPHA
    pop_norm = float(pop_alpha.sum())
    explore = pop_alpha / pop_norm
    taste_norm = np.empty(n_u)
    song = np.empty(n, dtype=np.int64)
    draws = rng.random(n)
    for c0 in range(0, n_u, _USER_CHUNK):
        c1 = min(c0 + _USER_CHUNK, n_u)
        fav = users.fav_mask[c0:c1][:, cat.song_artist]
        t = _taste(users.pref[c0:c1], fav, cat.weights, pop_alpha, SHARPNESS, FAVOURITE_BOOST)
        z = t.sum(1)
        taste_norm[c0:c1] = z
        eps = users.eps[c0:c1, None]
        cdf = np.cumsum((1.0 - eps) * t / z[:, None] + eps * explore, axis=1)
        cdf /= cdf[:, -1:]
        flat = (cdf + np.arange(c1 - c0)[:, None]).ravel()
        lo, hi = user_first[c0], user_first[c1]
        local = user[lo:hi] - c0
        idx = np.searchsorted(flat, local + draws[lo:hi], side="right") - local * n_s
        song[lo:hi] = np.clip(idx, 0, n_s - 1)
        if progress is not None:
            progress("plays", 0.2 + 0.6 * c1 / n_u)

    types = users.type_idx[user]
    cont_p = np.array([t.continue_prob for t in _USER_TYPES])[types]
    rep_p = np.array([t.repeat_prob for t in _USER_TYPES])[types]
    skip_base = np.array([t.skip_base for t in _USER_TYPES])[types]
    pref_max = users.pref.max(1)[user]

    def skip_prob(songs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        g = cat.sg_idx[songs]
        aff = (users.pref[user[rows, None], np.maximum(g, 0)] * cat.sg_w[songs]).sum(1)
        rel = aff / pref_max[rows]
        return np.clip(skip_base[rows] + 0.55 * (1.0 - rel) ** 2, 0.0, 0.9)

    mode_r = rng.random(n)
    cont = (pos > 0) & (mode_r < cont_p)
    rep = ~cont & (mode_r < cont_p + rep_p)
    skip_r = rng.random(n)
    skipped = np.zeros(n, dtype=bool)
    fresh = np.flatnonzero(~cont & ~rep)
    skipped[fresh] = skip_r[fresh] < skip_prob(song[fresh], fresh)

    # Repeats replay an earlier fresh play of the same user that was played through.
    liked = np.flatnonzero(~cont & ~rep & ~skipped)
    ri = np.flatnonzero(rep)
    lo = np.searchsorted(liked, user_first[user[ri]])
    hi = np.searchsorted(liked, ri)
    has = hi > lo
    pick = lo + np.floor(rng.random(len(ri)) * (hi - lo)).astype(np.int64)
    song[ri[has]] = song[liked[pick[has]]]
    rep[ri[~has]] = False
    ri = ri[has]

    # Same-artist runs continue from the run's anchor (its last fresh or repeated play):
    # half walk on through the artist's albums in track order, half pick another of the
    # artist's songs by popularity.
    anchor = np.maximum.accumulate(np.where(cont, -1, np.arange(n)))
    ci = np.flatnonzero(cont)
    a_song = song[anchor[ci]]
    a_art = cat.song_artist[a_song]
    start, length = cat.art_start[a_art], cat.art_len[a_art]
    step = ci - anchor[ci]
    next_track = cat.seq[start + (cat.seq_pos[a_song] - start + step) % length]
    cw = np.cumsum(pop_alpha[cat.seq])
    before = np.where(start > 0, cw[np.maximum(start - 1, 0)], 0.0)
    target = before + rng.random(len(ci)) * (cw[start + length - 1] - before)
    j = np.clip(np.searchsorted(cw, target, side="right"), start, start + length - 1)
    by_pop = cat.seq[j]
    walk = (rng.random(len(ci)) < 0.5) | (by_pop == a_song)  # no immediate replay of the anchor
    song[ci] = np.where(walk, next_track, by_pop)

    later = np.concatenate([ri, ci])
    factor = np.where(rep[later], 0.35, 1.0)
    skipped[later] = skip_r[later] < skip_prob(song[later], later) * factor

    dur = cat.duration_ms[song]
    ms_skip = rng.integers(2_000, SKIP_MS, n)
    full = rng.random(n) < 0.85
    floor_ms = np.maximum(SKIP_MS, dur // 2)
    ms_partial = floor_ms + np.floor(rng.random(n) * (dur - floor_ms + 1)).astype(np.int64)
    ms_played = np.where(skipped, ms_skip, np.where(full, dur, ms_partial)).astype(np.int64)

    # Timestamps: each play starts after the previous one ends plus a short gap; a session that
    # would overlap the user's previous one is pushed back to start 5 minutes after it ends.
    step_ms = ms_played + rng.integers(0, 3_000, n)
    csum = np.cumsum(step_ms)
    offset = csum - step_ms - (csum[sess_first] - step_ms[sess_first])[session]
    s_dur = np.add.reduceat(step_ms, sess_first) + 300_000
    before_sess = np.cumsum(s_dur) - s_dur
    before_sess = before_sess - before_sess[user_sess_first[s_user]]
    # start'_k = max(start_k, start'_{k-1} + dur_{k-1}) is a running max of start_k - C_k
    # within a user (C_k: durations before k); the user term keeps users apart in one pass.
    x = s_start - before_sess
    span = int(x.max() - x.min()) + 1 if n_sess else 1
    lift = s_user.astype(np.int64) * span
    s_start = np.maximum.accumulate(x + lift) - lift + before_sess
    ts = s_start[session] + offset

    return _Plays(
        user=user,
        song=song,
        session=session,
        pos=pos.astype(np.int32),
        ts=ts.astype(np.int64),
        ms_played=ms_played,
        skipped=skipped,
        session_user=s_user,
        session_index=session_index,
        taste_norm=taste_norm,
        pop_norm=pop_norm,
    )


# --------------------------------------------------------------------------- playlists


def _playlists(
    cfg: SyntheticConfig,
    cat: _Catalogue,
    users: _Users,
    plays: _Plays,
    rng: np.random.Generator,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Playlists themed on one or two of the owner's genres, filled from the owner's taste."""
    n_s = cfg.songs
    rate = np.array([t.playlists for t in _USER_TYPES])[users.type_idx]
    n_pl = rng.poisson(cfg.playlists_per_user * rate / rate.mean())
    liked = ~plays.skipped
    played = np.unique(plays.user[liked] * n_s + plays.song[liked])
    pop_alpha = cat.song_pop**ALPHA
    names = GENRE_NAMES
    pl_user: list[int] = []
    pl_name: list[str] = []
    tr_pl: list[np.ndarray] = []
    tr_song: list[np.ndarray] = []
    tr_pos: list[np.ndarray] = []
    genre_songs = [np.flatnonzero(cat.weights[:, g] > 0) for g in range(cfg.genres)]
    owners = np.flatnonzero(n_pl)
    for c0 in range(0, len(owners), _USER_CHUNK):
        chunk = owners[c0 : c0 + _USER_CHUNK]
        fav = users.fav_mask[chunk][:, cat.song_artist]
        tastes = _taste(users.pref[chunk], fav, cat.weights, pop_alpha, SHARPNESS, FAVOURITE_BOOST)
        for taste, u in zip(tastes, chunk.tolist(), strict=True):
            mine = played[np.searchsorted(played, u * n_s) : np.searchsorted(played, (u + 1) * n_s)]
            taste[mine - u * n_s] *= 3.0
            liked_genres = np.flatnonzero(users.pref[u])
            for _ in range(int(n_pl[u])):
                g = int(rng.choice(cfg.genres, p=users.pref[u]))
                cand = genre_songs[g]
                if len(liked_genres) > 1 and rng.random() < 0.15:
                    g2 = int(rng.choice(liked_genres[liked_genres != g]))
                    cand = np.union1d(cand, genre_songs[g2])
                    theme = cat.weights[cand, g] + cat.weights[cand, g2]
                    name = f"{names[g]} & {names[g2]}"
                else:
                    theme = cat.weights[cand, g]
                    name = _PLAYLIST_TEMPLATES[int(rng.integers(len(_PLAYLIST_TEMPLATES)))]
                    name = name.format(g=names[g])
                q = taste[cand] * theme
                size = int(np.clip(rng.lognormal(np.log(25.0), 0.5), 5, 100))
                size = min(size, int((q > 0).sum()))
                with np.errstate(divide="ignore"):
                    key = np.log(q) + rng.gumbel(size=len(cand))
                top = np.argpartition(-key, size - 1)[:size]
                top = top[np.argsort(-key[top], kind="stable")]
                pid = len(pl_user)
                pl_user.append(u)
                pl_name.append(name)
                tr_pl.append(np.full(size, pid))
                tr_song.append(cand[top])
                tr_pos.append(np.arange(size, dtype=np.int32))
    n = len(pl_user)
    modified = cfg.start_ms + rng.integers(0, cfg.days * _DAY_MS, n)
    followers = np.floor(rng.pareto(1.3, n) * 2.0).astype(np.int64)
    pl_ids = _ids("PL", 5, n)
    playlists = {
        "playlist_id": pl_ids,
        "name": pl_name,
        "user_user": np.array(pl_user, dtype=np.int64),
        "modified_at": modified.astype(np.int64),
        "num_followers": np.minimum(followers, 1_000_000),
    }
    tracks = {
        "playlist": np.concatenate(tr_pl) if tr_pl else np.zeros(0, np.int64),
        "song": np.concatenate(tr_song) if tr_song else np.zeros(0, np.int64),
        "pos": np.concatenate(tr_pos) if tr_pos else np.zeros(0, np.int32),
    }
    return playlists, tracks


# --------------------------------------------------------------------------- writing


def _take(values: list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int64()))


def _write_tables(out_dir: Path, columns: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Write every table of ``SCHEMAS`` (empty ones too) plus the report a TableSink leaves."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, schema in SCHEMAS.items():
        cols = columns.get(name)
        table = schema.empty_table() if cols is None else pa.table(dict(cols), schema=schema)
        pq.write_table(table, out_dir / f"{name}.parquet")
        rows[name] = table.num_rows
    (out_dir / "quarantine.jsonl").write_text("", encoding="utf-8")
    report = IngestReport(read=Counter({"synthetic": sum(rows.values())}), rows=Counter(rows))
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return rows


def generate(
    config: SyntheticConfig,
    out_dir: Path,
    *,
    progress: Callable[[str, float], None] | None = None,
) -> GenerationSummary:
    """Generate the normalised tables and ``truth.json`` into ``out_dir``.

    Args:
        config: sizes and seed; the same config gives identical table contents.
        out_dir: folder for ``<table>.parquet``, ``report.json``, ``quarantine.jsonl`` and
            ``truth.json`` (created).
        progress: called as ``progress(stage, fraction)`` with a fraction rising to 1.0.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)

    def step(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    # Independent streams per step, so a change in one step does not reshuffle the others.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)]
    cat = _catalogue(config, streams[0])
    step("catalogue", 0.1)
    users = _users(config, cat, streams[1])
    step("users", 0.2)
    plays = _plays(config, cat, users, streams[2], progress)
    playlists, tracks = _playlists(config, cat, users, plays, streams[3])
    step("playlists", 0.9)

    n_g, n_a, n_s, n_u = config.genres, config.artists, config.songs, config.users
    genre_ids = _genre_ids(n_g)
    artist_ids = _ids("A", 4, n_a)
    album_ids = _ids("AL", 5, len(cat.album_artist))
    song_ids = _ids("S", 6, n_s)
    user_ids = _ids("U", 5, n_u)
    session_ids = [
        f"{user_ids[u]}-s{k:05d}"
        for u, k in zip(plays.session_user.tolist(), plays.session_index.tolist(), strict=True)
    ]
    sg_rows, sg_col = np.nonzero(cat.sg_idx >= 0)
    ag_rows, ag_col = np.nonzero(cat.artist_genres >= 0)
    songs: dict[str, Any] = {
        "song_id": song_ids,
        "name": cat.song_names,
        "artist_id": _take(artist_ids, cat.song_artist),
        "album_id": _take(album_ids, cat.song_album),
        "duration_ms": cat.duration_ms,
        "popularity": cat.song_pop,
    }
    for k, feat in enumerate(AUDIO_FEATURES):
        songs[feat] = cat.features[:, k]
    columns: dict[str, dict[str, Any]] = {
        "users": {
            "user_id": user_ids,
            "name": [f"user_{i:04d}" for i in range(1, n_u + 1)],
            "user_type": _take(list(USER_TYPES), users.type_idx),
            "activity_level": users.activity,
        },
        "genres": {
            "genre_id": genre_ids,
            "name": list(GENRE_NAMES[:n_g]),
            "popularity": cat.genre_pop,
        },
        "artists": {
            "artist_id": artist_ids,
            "name": cat.artist_names,
            "popularity": cat.artist_pop,
        },
        "albums": {
            "album_id": album_ids,
            "name": cat.album_names,
            "artist_id": _take(artist_ids, cat.album_artist),
        },
        "songs": songs,
        "song_genres": {
            "song_id": _take(song_ids, sg_rows),
            "genre_id": _take(genre_ids, cat.sg_idx[sg_rows, sg_col]),
            "weight": cat.sg_w[sg_rows, sg_col],
        },
        "artist_genres": {
            "artist_id": _take(artist_ids, ag_rows),
            "genre_id": _take(genre_ids, cat.artist_genres[ag_rows, ag_col]),
            "weight": cat.artist_gw[ag_rows, ag_col],
        },
        "plays": {
            "user_id": _take(user_ids, plays.user),
            "song_id": _take(song_ids, plays.song),
            "session_id": _take(session_ids, plays.session),
            "pos": plays.pos,
            "ts": plays.ts,
            "ms_played": plays.ms_played,
            "skipped": plays.skipped,
        },
        "playlists": {
            "playlist_id": playlists["playlist_id"],
            "name": playlists["name"],
            "user_id": _take(user_ids, playlists["user_user"]),
            "modified_at": playlists["modified_at"],
            "num_followers": playlists["num_followers"],
        },
        "playlist_tracks": {
            "playlist_id": _take(playlists["playlist_id"], tracks["playlist"]),
            "song_id": _take(song_ids, tracks["song"]),
            "pos": tracks["pos"],
        },
    }
    rows = _write_tables(out_dir, columns)

    truth = {
        "format": 1,
        "config": asdict(config),
        "model": {
            "alpha": ALPHA,
            "sharpness": SHARPNESS,
            "favourite_boost": FAVOURITE_BOOST,
            "popularity_norm": plays.pop_norm,
            "formula": (
                "p(s|u) = (1 - eps_u) * taste(u,s) / taste_norm_u"
                " + eps_u * popularity(s)**alpha / popularity_norm;"
                " taste(u,s) = (sum_g genres_u[g] * w(s,g))**sharpness * popularity(s)**alpha"
                " * (1 + favourite_boost * [artist(s) in favourite_artists_u])"
            ),
        },
        "genres": dict(zip(genre_ids, GENRE_NAMES[:n_g], strict=True)),
        "users": {
            user_ids[u]: {
                "user_type": USER_TYPES[users.type_idx[u]],
                "activity_level": float(users.activity[u]),
                "genres": {
                    genre_ids[g]: float(users.pref[u, g])
                    for g in np.argsort(-users.pref[u], kind="stable")
                    if users.pref[u, g] > 0
                },
                "favourite_artists": [artist_ids[a] for a in users.favourites[u]],
                "exploration": float(users.eps[u]),
                "taste_norm": float(plays.taste_norm[u]),
            }
            for u in range(n_u)
        },
    }
    truth_path = out_dir / TRUTH_FILE
    truth_path.write_text(json.dumps(truth, indent=1), encoding="utf-8")
    step("done", 1.0)
    seconds = time.perf_counter() - t_start
    logger.info(
        "synthetic data: %d users, %d songs, %d plays, %d playlists in %.1f s -> %s",
        n_u,
        n_s,
        rows["plays"],
        rows["playlists"],
        seconds,
        out_dir,
    )
    return GenerationSummary(out_dir=out_dir, rows=rows, seconds=seconds, truth_path=truth_path)


# --------------------------------------------------------------------------- truth and oracle


def load_truth(path: Path) -> Truth:
    """Read ``truth.json`` (give the file or the folder :func:`generate` wrote)."""
    path = Path(path)
    if path.is_dir():
        path = path / TRUTH_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    model = raw["model"]
    users = {
        uid: UserTruth(
            user_type=u["user_type"],
            activity_level=float(u["activity_level"]),
            genres={g: float(w) for g, w in u["genres"].items()},
            favourite_artists=tuple(u["favourite_artists"]),
            exploration=float(u["exploration"]),
            taste_norm=float(u["taste_norm"]),
        )
        for uid, u in raw["users"].items()
    }
    return Truth(
        config=SyntheticConfig(**raw["config"]),
        alpha=float(model["alpha"]),
        sharpness=float(model["sharpness"]),
        favourite_boost=float(model["favourite_boost"]),
        popularity_norm=float(model["popularity_norm"]),
        genres=dict(raw["genres"]),
        users=users,
    )


def _column(table: Any, name: str) -> np.ndarray:
    """A column of a pyarrow Table or pandas DataFrame as numpy."""
    return np.asarray(table[name].to_numpy())


def oracle_scores(
    truth: Truth,
    user_ids: Sequence[str],
    song_ids: Sequence[str],
    *,
    songs: Any,
    song_genres: Any,
) -> np.ndarray:
    """The generator's own probability p(s | u) of a fresh play: the best achievable ranking.

    It is the static part of the sampling distribution (module docstring), with no session
    dynamics and no randomness, so ranking a user's unseen songs by it is the ceiling any model
    can reach on held-out plays. Because the normalisers come from the truth file, the values
    are exact probabilities whichever subset of songs is asked for.

    Args:
        truth: from :func:`load_truth`.
        user_ids: rows of the result; every id must be in the truth file.
        song_ids: columns of the result; every id must be in ``songs``.
        songs: the ``songs`` table as written (pyarrow Table or pandas DataFrame) with at least
            ``song_id``, ``artist_id`` and ``popularity``.
        song_genres: the ``song_genres`` table (``song_id``, ``genre_id``, ``weight``).

    Shapes:
        returns float64 [len(user_ids), len(song_ids)]; a row over the whole generated
        catalogue sums to 1. Memory is about 8 * users * songs bytes; call it for chunks of
        users when that is large.
    """
    missing_users = [u for u in user_ids if u not in truth.users]
    if missing_users:
        raise ValueError(
            f"user ids not in the truth file: {missing_users[:5]} ({len(missing_users)} in all)"
        )
    all_songs = _column(songs, "song_id")
    row_of = {s: i for i, s in enumerate(all_songs.tolist())}
    missing_songs = [s for s in song_ids if s not in row_of]
    if missing_songs:
        raise ValueError(
            f"song ids not in the songs table: {missing_songs[:5]} ({len(missing_songs)} in all)"
        )
    rows = np.array([row_of[s] for s in song_ids], dtype=np.int64)
    col_of = {s: j for j, s in enumerate(song_ids)}
    pop_alpha = _column(songs, "popularity").astype(np.float64)[rows] ** truth.alpha
    artist = _column(songs, "artist_id")[rows].tolist()

    genre_col = {g: k for k, g in enumerate(truth.genres)}
    weights = np.zeros((len(song_ids), len(genre_col)))
    sg_song = _column(song_genres, "song_id").tolist()
    sg_genre = _column(song_genres, "genre_id").tolist()
    sg_weight = _column(song_genres, "weight").astype(np.float64)
    for s, g, w in zip(sg_song, sg_genre, sg_weight.tolist(), strict=True):
        j = col_of.get(s)
        k = genre_col.get(g)
        if j is not None and k is not None:
            weights[j, k] = w

    artist_codes = {a: i for i, a in enumerate(dict.fromkeys(artist))}
    song_artist = np.array([artist_codes[a] for a in artist], dtype=np.int64)
    out = np.empty((len(user_ids), len(song_ids)))
    for c0 in range(0, len(user_ids), _USER_CHUNK):
        chunk = [truth.users[u] for u in user_ids[c0 : c0 + _USER_CHUNK]]
        pref = np.zeros((len(chunk), len(genre_col)))
        fav_art = np.zeros((len(chunk), len(artist_codes)), dtype=bool)
        for i, ut in enumerate(chunk):
            for g, w in ut.genres.items():
                pref[i, genre_col[g]] = w
            for a in ut.favourite_artists:
                if a in artist_codes:
                    fav_art[i, artist_codes[a]] = True
        t = _taste(
            pref,
            fav_art[:, song_artist],
            weights,
            pop_alpha,
            truth.sharpness,
            truth.favourite_boost,
        )
        eps = np.array([ut.exploration for ut in chunk])[:, None]
        norm = np.array([ut.taste_norm for ut in chunk])[:, None]
        out[c0 : c0 + len(chunk)] = (1.0 - eps) * t / norm + eps * pop_alpha / truth.popularity_norm
    return out
