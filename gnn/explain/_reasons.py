"""Human-readable reasons built from the same weighted evidence that is written to the graph.

The sentence only ever names evidence the explainer returned, in weight order, so the words
and the ``BECAUSE`` weights in Neo4j can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class NamedEvidence:
    """Evidence with display names: ``artist`` is the artist of a played song, if known.

    An empty ``name`` (a playlist exported without its name) is kept out of the sentence."""

    kind: str
    name: str
    weight: float
    artist: str | None = None


def _join(names: Sequence[str]) -> str:
    quoted = [f"“{n}”" for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def reason_text(evidence: Sequence[NamedEvidence], *, song_artist: str | None = None) -> str:
    """E.g. 'Because you played “X” and “Y” by Z, and you listen to a lot of Indie Rock.'"""
    evidence = [e for e in evidence if e.name or e.kind != "playlist"]
    if not evidence:
        return "Popular with listeners like you."
    clauses: list[tuple[float, str]] = []
    by_kind: dict[str, list[NamedEvidence]] = {}
    for ev in evidence:
        by_kind.setdefault(ev.kind, []).append(ev)

    def weight(kind: str) -> float:
        return sum(e.weight for e in by_kind[kind])

    if "played" in by_kind:
        played = by_kind["played"][:3]
        text = f"you played {_join([e.name for e in played])}"
        artists = {e.artist for e in played if e.artist}
        if len(artists) == 1:
            (artist,) = artists
            text += f" by {artist}"
        clauses.append((weight("played"), text))
    if "genre_affinity" in by_kind:
        genres = [e.name for e in by_kind["genre_affinity"][:2]]
        clauses.append((weight("genre_affinity"), f"you listen to a lot of {' and '.join(genres)}"))
    if "artist" in by_kind:
        clauses.append((weight("artist"), f"it is by {by_kind['artist'][0].name}"))
    if "genre" in by_kind:
        genres = [e.name for e in by_kind["genre"][:2]]
        clauses.append((weight("genre"), f"it is {' / '.join(genres)}"))
    if "similar_user" in by_kind:
        users = [e.name for e in by_kind["similar_user"][:2]]
        who = " and ".join(users)
        clauses.append((weight("similar_user"), f"listeners with similar taste ({who}) play it"))
    named_playlists = [e for e in by_kind.get("playlist", []) if e.name]
    if named_playlists:
        clauses.append(
            (weight("playlist"), f"it is on playlists like {_join([named_playlists[0].name])}")
        )
    clauses.sort(key=lambda c: -c[0])
    parts = [c[1] for c in clauses[:3]]
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    return f"Because {body}."
