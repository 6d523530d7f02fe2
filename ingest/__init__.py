"""ingest: sources (a generator and four public formats) -> normalised Parquet tables -> Neo4j.

Readers never talk to Neo4j; the loader (online) or the bulk import writes the tables;
:func:`ingest` runs both steps with an audit trail.
:func:`validate_graph` and :func:`profile_graph` look at what landed.
"""

from ingest._bulk import BulkResult, bulk_import
from ingest._gaps import DEFAULT_GAP_MINUTES
from ingest._loader import Loader, LoadResult
from ingest._pipeline import SOURCES, IngestOutcome, check_input, ingest
from ingest._profile import ProfileResult, profile_graph
from ingest._readers import READERS, read_kaggle, read_lastfm, read_mpd, read_sessions_folder
from ingest._sink import IngestReport, TableSink
from ingest._synthetic import SyntheticConfig, Truth, generate, load_truth, oracle_scores
from ingest._tables import AUDIO_FEATURES, SCHEMAS, TABLES
from ingest._validate import FAIL, PASS, SAMPLE_SONGS, Check, validate_graph

__all__ = [
    "AUDIO_FEATURES",
    "DEFAULT_GAP_MINUTES",
    "FAIL",
    "PASS",
    "READERS",
    "SAMPLE_SONGS",
    "SCHEMAS",
    "SOURCES",
    "TABLES",
    "BulkResult",
    "Check",
    "IngestOutcome",
    "IngestReport",
    "LoadResult",
    "Loader",
    "ProfileResult",
    "SyntheticConfig",
    "TableSink",
    "Truth",
    "bulk_import",
    "check_input",
    "generate",
    "ingest",
    "load_truth",
    "oracle_scores",
    "profile_graph",
    "read_kaggle",
    "read_lastfm",
    "read_mpd",
    "read_sessions_folder",
    "validate_graph",
]
