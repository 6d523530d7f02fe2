"""Business rules on a list of songs: excluded songs, excluded artists, one genre.

Rules are applied before a list is cut to ``k``: the Cypher statements filter candidates in
their ``WHERE`` (``$exclude_songs``, ``$exclude_artists``, ``$genre``), and model rankings are
asked for more candidates until ``k`` pass (see ``api.services.suggestions``), so a request
still returns ``k`` items when ``k`` allowed songs exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


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

    def song_mask(self, snap: Any) -> np.ndarray | None:
        """Allowed songs of a :class:`gnn.graph.GraphSnapshot` (None: no rule)."""
        if not self.any:
            return None
        mask = np.ones(snap.num_songs, dtype=bool)
        if self.genre:
            names = snap.genre_names if snap.genre_names is not None else snap.genre_ids
            want = self.genre.lower()
            gids = [
                g
                for g in range(snap.num_genres)
                if str(snap.genre_ids[g]) == self.genre or str(names[g] or "").lower() == want
            ]
            mask[:] = False
            mask[snap.song_genre[0][np.isin(snap.song_genre[1], gids)]] = True
        if self.exclude_songs:
            mask[np.isin(snap.song_ids.astype(str), list(self.exclude_songs))] = False
        if self.exclude_artists:
            names = snap.artist_names if snap.artist_names is not None else snap.artist_ids
            banned = {a.lower() for a in self.exclude_artists}
            aids = [
                a
                for a in range(snap.num_artists)
                if str(snap.artist_ids[a]) in self.exclude_artists
                or str(snap.artist_ids[a]).lower() in banned
                or str(names[a] or "").lower() in banned
            ]
            mask[snap.song_artist[0][np.isin(snap.song_artist[1], aids)]] = False
        return mask
