"""Human-readable reasons built from the same weighted evidence that is written to the graph.

A sentence names at most :data:`MAX_NAMED` pieces of evidence, all taken from the evidence
it is given (the ``BECAUSE`` edges), so the words and the graph can never disagree. Pieces of
one kind share a clause; clauses come in the order of their strongest piece, so the strongest
piece named is the first one read. Each clause states only what its evidence is, with the
number that makes it checkable in the graph:

* ``played``: 'you played “X” and “Y”' (+ 'by Z' when every named song is by Z);
* ``genre_affinity``: '38% of your plays are Indie Rock' (the user's true share);
* ``similar_user``: 'U00042 (12 songs in common with you) plays it';
* ``artist``: 'it is by Z'; ``genre``: 'it is Indie Rock'; ``playlist``: 'it is on “P”'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The most pieces of evidence one sentence names.
MAX_NAMED = 3

#: The sentence of a recommendation without any evidence to name.
NO_EVIDENCE = "No single song, listener, artist or genre stands out for this one."


@dataclass(frozen=True)
class NamedEvidence:
    """Evidence with display names and the facts its clause states.

    Attributes:
        kind: the evidence kind (``played``, ``genre_affinity``, ``similar_user``, ...).
        name: display name; an empty one (a playlist exported without a name) cannot be named.
        weight: the evidence weight (only the order matters here).
        artist: the artist of a played song, if known.
        share_of_plays: ``genre_affinity``: the user's share of plays in that genre (0..1).
        songs_in_common: ``similar_user``: songs both users listened to.
    """

    kind: str
    name: str
    weight: float
    artist: str | None = None
    share_of_plays: float | None = None
    songs_in_common: int | None = None


def _join(names: Sequence[str], sep: str = ", ") -> str:
    if len(names) <= 1:
        return "".join(names)
    return sep.join(names[:-1]) + " and " + names[-1]


def _quoted(names: Sequence[str]) -> str:
    return _join([f"“{n}”" for n in names])


def percent(share: float) -> int:
    """A share of plays as the whole percent a sentence states (half up)."""
    return int(share * 100 + 0.5)


def _songs(n: int) -> str:
    return f"{n} song{'s' if n != 1 else ''} in common with you"


def _clause(kind: str, pieces: list[NamedEvidence]) -> str:
    names = [e.name for e in pieces]
    if kind == "played":
        text = f"you played {_quoted(names)}"
        artists = {e.artist for e in pieces}
        if len(artists) == 1 and None not in artists:
            text += f" by {pieces[0].artist}"
        return text
    if kind == "genre_affinity":
        parts = [f"{percent(e.share_of_plays or 0.0)}% of your plays are {e.name}" for e in pieces]
        parts[1:] = [f"{percent(e.share_of_plays or 0.0)}% are {e.name}" for e in pieces[1:]]
        return _join(parts)
    if kind == "similar_user":
        who = [f"{e.name} ({_songs(e.songs_in_common or 0)})" for e in pieces]
        return f"{_join(who)} {'plays' if len(who) == 1 else 'play'} it"
    if kind == "artist":
        return f"it is by {_join(names)}"
    if kind == "genre":
        return f"it is {' / '.join(names)}"
    if kind == "playlist":
        return f"it is on {'the playlist' if len(names) == 1 else 'the playlists'} {_quoted(names)}"
    raise ValueError(f"unknown evidence kind {kind!r}")


def nameable(ev: NamedEvidence) -> bool:
    """Whether a sentence can name this piece (it has a name, and the fact its clause states)."""
    if not ev.name:
        return False
    if ev.kind == "genre_affinity":
        return ev.share_of_plays is not None
    if ev.kind == "similar_user":
        return ev.songs_in_common is not None
    return True


def reason_text(evidence: Sequence[NamedEvidence]) -> str:
    """The sentence naming exactly ``evidence`` (at most :data:`MAX_NAMED` nameable pieces).

    E.g. 'Because you played “X” and “Y” by Z, and 38% of your plays are Indie Rock.'
    """
    pieces = [e for e in evidence if nameable(e)]
    if len(pieces) > MAX_NAMED:
        raise ValueError(f"a reason names at most {MAX_NAMED} pieces (got {len(pieces)})")
    if not pieces:
        return NO_EVIDENCE
    pieces.sort(key=lambda e: -e.weight)
    by_kind: dict[str, list[NamedEvidence]] = {}
    for ev in pieces:
        by_kind.setdefault(ev.kind, []).append(ev)
    clauses = sorted(by_kind.items(), key=lambda kv: -kv[1][0].weight)
    parts = [_clause(kind, group) for kind, group in clauses]
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    return f"Because {body}."


def choose_reason(
    evidence: Sequence[NamedEvidence], *, avoid: str | None = None
) -> tuple[list[int], str]:
    """Which pieces to name, and the sentence: the strongest nameable ones, unless that
    sentence is ``avoid`` (the previous rank's), in which case a weaker piece replaces the
    weakest named one, then the next weakest, until the sentence differs (the strongest piece
    is always kept). Returns indices into ``evidence`` and the sentence.
    """
    order = sorted(
        (j for j, e in enumerate(evidence) if nameable(e)), key=lambda j: -evidence[j].weight
    )
    base = order[:MAX_NAMED]
    text = reason_text([evidence[j] for j in base])
    if avoid is None or text != avoid:
        return base, text
    rest = order[MAX_NAMED:]
    for drop in range(len(base) - 1, 0, -1):
        for j in rest:
            pick = sorted([*base[:drop], *base[drop + 1 :], j], key=lambda x: -evidence[x].weight)
            other = reason_text([evidence[x] for x in pick])
            if other != avoid:
                return pick, other
    return base, text
