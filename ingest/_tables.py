"""The normalised tables every reader produces and the loader consumes.

Readers (synthetic generator, sessions CSV, Last.fm, Kaggle, MPD) never talk to Neo4j: they
stream source rows, validate them, and append rows to these tables, which are written as
Parquet files in one folder (``<table>.parquet``). The loader reads that folder into Neo4j.

Ids are strings and stable: the same source row always gives the same id, so re-running an
ingest MERGEs onto the same nodes. Timestamps are UTC epoch milliseconds (int64).

Only ``plays`` or ``playlist_tracks`` must be non-empty; every other table enriches.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

#: Characters of a name kept in ``name_prefix``, the indexed form of Song, Artist and Genre
#: names: at most 1 kB of UTF-8, far under Neo4j's index key limit (about 8 kB), while names
#: themselves are stored whole, whatever their length.
NAME_PREFIX_CHARS = 256

AUDIO_FEATURES: tuple[str, ...] = (
    "danceability",
    "energy",
    "valence",
    "tempo",
    "acousticness",
    "instrumentalness",
    "speechiness",
    "loudness",
)

SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema(
        [
            ("user_id", pa.string()),
            ("name", pa.string()),
            ("user_type", pa.string()),
            ("activity_level", pa.float64()),
        ]
    ),
    "genres": pa.schema(
        [("genre_id", pa.string()), ("name", pa.string()), ("popularity", pa.float64())]
    ),
    "artists": pa.schema(
        [("artist_id", pa.string()), ("name", pa.string()), ("popularity", pa.float64())]
    ),
    "albums": pa.schema(
        [("album_id", pa.string()), ("name", pa.string()), ("artist_id", pa.string())]
    ),
    "songs": pa.schema(
        [
            ("song_id", pa.string()),
            ("name", pa.string()),
            ("artist_id", pa.string()),
            ("album_id", pa.string()),
            ("duration_ms", pa.int64()),
            ("popularity", pa.float64()),
        ]
        + [(f, pa.float64()) for f in AUDIO_FEATURES]
    ),
    "song_genres": pa.schema(
        [("song_id", pa.string()), ("genre_id", pa.string()), ("weight", pa.float64())]
    ),
    "artist_genres": pa.schema(
        [("artist_id", pa.string()), ("genre_id", pa.string()), ("weight", pa.float64())]
    ),
    # One row per play, ordered within a session by ``pos`` (0-based).
    "plays": pa.schema(
        [
            ("user_id", pa.string()),
            ("song_id", pa.string()),
            ("session_id", pa.string()),
            ("pos", pa.int32()),
            ("ts", pa.int64()),
            ("ms_played", pa.int64()),
            ("skipped", pa.bool_()),
        ]
    ),
    "playlists": pa.schema(
        [
            ("playlist_id", pa.string()),
            ("name", pa.string()),
            ("user_id", pa.string()),
            ("modified_at", pa.int64()),
            ("num_followers", pa.int64()),
        ]
    ),
    "playlist_tracks": pa.schema(
        [("playlist_id", pa.string()), ("song_id", pa.string()), ("pos", pa.int32())]
    ),
}

TABLES: tuple[str, ...] = tuple(SCHEMAS)


def empty_table(name: str) -> pa.Table:
    """An empty table with the schema of ``name``."""
    return SCHEMAS[name].empty_table()


def with_name_prefix(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``name_prefix``: the first :data:`NAME_PREFIX_CHARS` characters (code
    points, as Cypher's ``left()`` counts) of ``name``, null where the name is."""
    prefix = (
        df["name"]
        .astype(object)
        .map(lambda v: v[:NAME_PREFIX_CHARS] if isinstance(v, str) else None)
    )
    return df.assign(name_prefix=pd.Series(prefix, index=df.index, dtype=object))
