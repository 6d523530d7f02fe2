"""Typed request and response bodies: what the OpenAPI schema at /docs shows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: Graph ids: synthetic ``U00001``, Last.fm ``mbid:...``, MPD ``spotify:track:...``, hashes.
ID_PATTERN = r"^[A-Za-z0-9_:.@|+=-]{1,200}$"
MAX_SEEDS = 100
MAX_PLAYS = 1000

GraphId = Annotated[str, StringConstraints(pattern=ID_PATTERN, min_length=1, max_length=200)]
TrackUri = Annotated[str, StringConstraints(pattern=r"^spotify:track:[A-Za-z0-9]{1,64}$")]
#: An artist by id or by name (matched ignoring case).
ArtistRef = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- recommendations and explanations -----------------------------------------------------------
class Evidence(_Model):
    """One weighted reason: a node of the graph and how much it raised the score."""

    kind: str = Field(description="played, genre_affinity, artist, genre, similar_user, playlist")
    weight: float = Field(description="share of the recommendation's evidence (sums to 1)")
    label: str = Field(description="node label: Song, User, Artist, Genre or Playlist")
    id: str
    name: str | None = None


class RecommendationItem(_Model):
    rank: int = Field(ge=1)
    song_id: str
    name: str | None = None
    artist: str | None = None
    score: float
    reason: str | None = Field(default=None, description="the human-readable sentence")
    evidence: list[Evidence] | None = Field(
        default=None, description="weighted evidence (only with explain=true)"
    )


Source = Literal["precomputed", "live", "fold_in", "popular"]


class Recommendations(_Model):
    user_id: str
    source: Source = Field(
        description="precomputed: written back by the active run; live: scored now by the "
        "active run; fold_in: scored now by the active run from the user's current plays, "
        "including plays posted since training (a linear run: x_u B; EnhancedGAT: the graph "
        "rebuilt with those plays, representations recomputed); popular: cold start"
    )
    cold_start: bool = Field(description="unknown user or no listening history: popular songs")
    model: str | None = None
    run_id: str | None = None
    genre: str | None = None
    explained: bool = Field(
        description="items carry reasons and evidence (live explanations are opt-in: "
        "SPOTIFY_ENGINE_API_LIVE_EXPLAIN)"
    )
    items: list[RecommendationItem]
    ignored: list[str] = Field(
        default_factory=list,
        description="fold_in: songs the user played that the model does not know (not used)",
    )
    max_per_artist: int | None = Field(
        default=None,
        description="the cap applied: the request's, else the serving run's (chosen on "
        "validation when it was trained); null: no cap",
    )


class RecommendationsQuery(BaseModel):
    """The query parameters of ``GET /users/{user_id}/recommendations`` (unknown ones are
    ignored, as FastAPI ignores them; read by ``api.query.QueryModel``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    k: int = Field(default=10, ge=1, le=100, description="list length, 1..100")
    explain: bool = Field(default=True, description="include reasons and weighted evidence")
    max_per_artist: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None,
        description="at most this many songs of one artist; 0: no cap; not given: the "
        "serving run's cap (chosen on validation, see max_per_artist in the answer)",
    )
    exclude_songs: list[GraphId] = Field(
        default_factory=list,
        max_length=MAX_SEEDS,
        description="song ids never to return (repeat the parameter)",
    )
    exclude_artists: list[ArtistRef] = Field(
        default_factory=list,
        max_length=MAX_SEEDS,
        description="artists (id, or name ignoring case) whose songs are never returned",
    )
    genre: str | None = Field(
        default=None, min_length=1, max_length=100, description="genre id or name"
    )


class Explanation(_Model):
    user_id: str
    song_id: str
    song: str | None = None
    source: Literal["precomputed", "live"]
    rank: int | None = None
    score: float
    model: str | None = None
    run_id: str | None = None
    sentence: str
    evidence: list[Evidence]


# -- songs and users ----------------------------------------------------------------------------
class Ref(_Model):
    id: str
    name: str | None = None


class WeightedRef(Ref):
    weight: float | None = None


class Song(_Model):
    song_id: str
    name: str | None = None
    duration_ms: int | None = None
    popularity: float | None = None
    artist: Ref | None = None
    album: Ref | None = None
    genres: list[WeightedRef]
    plays: int = Field(ge=0, description="plays by all users")
    listeners: int = Field(ge=0)


class SongScore(_Model):
    rank: int = Field(ge=1)
    song_id: str
    name: str | None = None
    artist: str | None = None
    score: float


class SimilarSongs(_Model):
    song_id: str
    run_id: str | None = Field(default=None, description="run whose embeddings gave SIMILAR_TO")
    items: list[SongScore]


class ListeningStats(_Model):
    plays: int = Field(ge=0)
    songs: int = Field(ge=0, description="distinct songs played")
    sessions: int = Field(ge=0)
    ms_played: int | None = None
    skips: int = Field(ge=0)
    first_at: datetime | None = None
    last_at: datetime | None = None


class UserProfile(_Model):
    user_id: str
    name: str | None = None
    stats: ListeningStats
    top_genres: list[WeightedRef]
    top_artists: list[WeightedRef]


# -- sessions and playlists ---------------------------------------------------------------------
class RuleFields(_Model):
    """Rules applied before the list is cut to ``k``."""

    exclude_songs: list[GraphId] = Field(
        default_factory=list, max_length=MAX_SEEDS, description="song ids never to suggest"
    )
    exclude_artists: list[ArtistRef] = Field(
        default_factory=list,
        max_length=MAX_SEEDS,
        description="artists (id, or name ignoring case) whose songs are never suggested",
    )
    genre: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="only songs of this genre (id or name)",
    )
    max_per_artist: int | None = Field(
        default=None, ge=1, le=100, description="at most this many songs of one artist"
    )


class NextSongRequest(RuleFields):
    user_id: GraphId | None = None
    recent_song_ids: list[GraphId] = Field(
        min_length=1, max_length=MAX_SEEDS, description="the session so far, oldest first"
    )
    at: datetime | None = Field(default=None, description="when the next song will play")
    k: int = Field(default=10, ge=1, le=100)


class PlaylistContinueRequest(RuleFields):
    name: str | None = Field(default=None, max_length=200)
    song_ids: list[GraphId] | None = Field(default=None, min_length=1, max_length=MAX_SEEDS)
    track_uris: list[TrackUri] | None = Field(default=None, min_length=1, max_length=MAX_SEEDS)
    k: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _one_seed_list(self) -> PlaylistContinueRequest:
        if self.song_ids is not None and self.track_uris is not None:
            raise ValueError("give at most one of song_ids or track_uris")
        if self.song_ids is None and self.track_uris is None and not (self.name or "").strip():
            raise ValueError("give song_ids, track_uris, or a name (K = 0: the name only)")
        return self

    @property
    def seeds(self) -> list[str]:
        return list(self.song_ids or self.track_uris or [])


class Suggestions(_Model):
    """Songs for a session or a playlist, and which model answered."""

    model: str = Field(description="model name, or the graph fallback used")
    run_id: str | None = None
    fallback: bool = Field(description="true when no trained task model answered")
    cold_start: bool = Field(default=False, description="nothing in the input was known")
    ignored: list[str] = Field(
        default_factory=list, description="input song ids the graph does not know, left out"
    )
    items: list[SongScore]


class PlaylistSuggestions(Suggestions):
    playlist_id: str | None = None
    name: str | None = None


# -- events -------------------------------------------------------------------------------------
class PlayEvent(_Model):
    song_id: GraphId
    at: datetime = Field(description="when the play started (ISO-8601; UTC when no offset)")
    ms_played: int | None = Field(default=None, ge=0, le=86_400_000)
    skipped: bool = False


class PlaysBatch(_Model):
    user_id: GraphId
    plays: list[PlayEvent] = Field(min_length=1, max_length=MAX_PLAYS)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="same key, same batch: recorded once (the Idempotency-Key header wins)",
    )


class PlaysRecorded(_Model):
    user_id: str
    session_id: str
    plays: int
    duplicate: bool = Field(description="this batch was already recorded; nothing changed")
    user_created: bool


# -- models and health --------------------------------------------------------------------------
class RunSummary(_Model):
    run_id: str
    task: str
    model: str
    created_at: str
    num_parameters: int
    train_seconds: float | None = None
    metrics: dict[str, Any]
    active: bool


class ActiveModels(_Model):
    user: RunSummary | None = None
    session: RunSummary | None = None
    playlist: RunSummary | None = None
    loaded: dict[str, bool] = Field(description="which tasks have a model loaded for live use")


class Neo4jHealth(_Model):
    reachable: bool
    version: str | None = None
    error: str | None = None


class Health(_Model):
    status: Literal["ok", "degraded"]
    neo4j: Neo4jHealth
    active_runs: dict[str, str | None]
    versions: dict[str, str]


class Ready(_Model):
    ready: bool


class Problem(_Model):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
