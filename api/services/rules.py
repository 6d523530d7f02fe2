"""Business rules on a list of songs: excluded songs, excluded artists, one genre.

Rules are applied before a list is cut to ``k``: the Cypher statements filter candidates in
their ``WHERE`` (``$exclude_songs``, ``$exclude_artists``, ``$genre``), and model rankings are
asked for more candidates until ``k`` pass (see ``api.services.suggestions``), so a request
still returns ``k`` items when ``k`` allowed songs exist.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Rules:
    """What a list may not contain (``exclude_*``) and the genre it must stay in.

    Artists are matched by id or by name ignoring case, genres likewise.
    """

    exclude_songs: tuple[str, ...] = ()
    exclude_artists: tuple[str, ...] = ()
    genre: str | None = None

    @classmethod
    def of(
        cls,
        *,
        exclude_songs: Iterable[str] | None = None,
        exclude_artists: Iterable[str] | None = None,
        genre: str | None = None,
    ) -> Rules:
        return cls(
            exclude_songs=tuple(sorted(set(exclude_songs or ()))),
            exclude_artists=tuple(sorted(set(exclude_artists or ()))),
            genre=genre,
        )

    @property
    def any(self) -> bool:
        return bool(self.exclude_songs or self.exclude_artists or self.genre)

    def params(self, *also_excluded: Iterable[str]) -> dict[str, Any]:
        """The statement parameters; ``also_excluded`` adds song ids (e.g. the seeds)."""
        songs = set(self.exclude_songs)
        for more in also_excluded:
            songs.update(more)
        return {
            "exclude_songs": sorted(songs),
            "exclude_artists": sorted(
                {*self.exclude_artists, *(a.lower() for a in self.exclude_artists)}
            ),
            "genre": self.genre,
        }

    def allows(
        self, song_id: str, artist_keys: Iterable[str], genre_ids: Collection[str],
        genre_names: Collection[str],
    ) -> bool:  # fmt: skip
        """Whether a song passes, exactly as the statements' ``WHERE`` tests it: an artist is
        excluded by id or lower-case name; ``artist_keys`` holds both of the song's artists',
        ``genre_names`` the lower-case names (see ``cypher/api/user_recommendations.cypher``).
        """
        if song_id in self.exclude_songs:
            return False
        if self.exclude_artists:
            banned = self._banned
            if any(a in banned for a in artist_keys):
                return False
        if self.genre:
            return self.genre in genre_ids or self._genre_lower in genre_names
        return True

    @functools.cached_property
    def _banned(self) -> frozenset[str]:
        return frozenset({*self.exclude_artists, *(a.lower() for a in self.exclude_artists)})

    @functools.cached_property
    def _genre_lower(self) -> str | None:
        return None if self.genre is None else self.genre.lower()

    def song_mask(self, snap: Any) -> np.ndarray | None:
        """Allowed songs of a :class:`gnn.graph.GraphSnapshot` (None: no rule).

        Uses the snapshot's :class:`_RuleIndex` (built once per snapshot), so a request costs
        one copy of a ``[num_songs]`` mask plus its excluded songs and artists.
        """
        if not self.any:
            return None
        index = _rule_index(snap)
        everything = np.ones(snap.num_songs, dtype=bool)
        mask = index.genre_mask(self.genre).copy() if self.genre else everything
        for sid in self.exclude_songs:
            i = index.song.get(sid)
            if i is not None:
                mask[i] = False
        for a in index.artists(self.exclude_artists):
            mask[index.artist_songs(a)] = False
        return mask


def cap_per_artist(
    items: Iterable[T], artist: Callable[[T], Hashable | None], max_per_artist: int | None, k: int
) -> list[T]:
    """The first ``k`` of ``items`` (best first) with at most ``max_per_artist`` per artist;
    an item whose artist is unknown (None) is never capped."""
    out: list[T] = []
    seen: Counter[Hashable] = Counter()
    for item in items:
        if len(out) == k:
            break
        a = artist(item)
        if max_per_artist is not None and a is not None:
            if seen[a] >= max_per_artist:
                continue
            seen[a] += 1
        out.append(item)
    return out


class _RuleIndex:
    """Lookups of one snapshot for :meth:`Rules.song_mask`: song index by id; artist indices
    by id, lower-case id and lower-case name; genre indices by id and lower-case name; songs per
    artist (CSR); a song mask per genre asked for (kept)."""

    def __init__(self, snap: Any) -> None:
        self.song = {str(s): i for i, s in enumerate(snap.song_ids)}
        self.artist_key: dict[str, list[int]] = {}
        names = snap.artist_names if snap.artist_names is not None else snap.artist_ids
        for a in range(snap.num_artists):
            aid = str(snap.artist_ids[a])
            keys = {aid, aid.lower(), str(names[a] or "").lower()}
            for key in keys:
                self.artist_key.setdefault(key, []).append(a)
        self.genre_key: dict[str, list[int]] = {}
        gnames = snap.genre_names if snap.genre_names is not None else snap.genre_ids
        for g in range(snap.num_genres):
            self.genre_key.setdefault(str(snap.genre_ids[g]), []).append(g)
            self.genre_key.setdefault("\0" + str(gnames[g] or "").lower(), []).append(g)
        songs, artists = (np.asarray(x, dtype=np.int64) for x in snap.song_artist)
        order = np.argsort(artists, kind="stable")
        self._artist_songs = songs[order]
        self._artist_ptr = np.searchsorted(artists[order], np.arange(snap.num_artists + 1))
        self._song_genre = (np.asarray(snap.song_genre[0]), np.asarray(snap.song_genre[1]))
        self._num_songs = snap.num_songs
        self._genres: dict[str, np.ndarray] = {}

    def artists(self, requested: Iterable[str]) -> set[int]:
        """Artist indices an ``exclude_artists`` list names (by id, or id or name in any case;
        the same test as :meth:`Rules.song_mask` always made)."""
        out: set[int] = set()
        for a in requested:
            for key in {a, a.lower()}:
                out.update(self.artist_key.get(key, ()))
        return out

    def artist_songs(self, a: int) -> np.ndarray:
        return self._artist_songs[self._artist_ptr[a] : self._artist_ptr[a + 1]]

    def genre_mask(self, genre: str) -> np.ndarray:
        hit = self._genres.get(genre)
        if hit is None:
            gids = {*self.genre_key.get(genre, ()), *self.genre_key.get("\0" + genre.lower(), ())}
            hit = np.zeros(self._num_songs, dtype=bool)
            hit[self._song_genre[0][np.isin(self._song_genre[1], sorted(gids))]] = True
            hit.setflags(write=False)
            if len(self._genres) < 4096:
                self._genres[genre] = hit
        return hit


_index_cache: tuple[weakref.ref[Any], _RuleIndex] | None = None
_index_lock = threading.Lock()


def _rule_index(snap: Any) -> _RuleIndex:
    """The :class:`_RuleIndex` of ``snap`` (the last snapshot asked for is kept)."""
    global _index_cache
    with _index_lock:
        if _index_cache is not None and _index_cache[0]() is snap:
            return _index_cache[1]
        index = _RuleIndex(snap)
        with contextlib.suppress(TypeError):  # not weakly referable (a stand-in): not kept
            _index_cache = (weakref.ref(snap), index)
        return index
