"""spotify-engine: ingest.

Sources (a synthetic generator and four public formats) are read into normalised Parquet
tables, which the loader writes to Neo4j; :func:`ingest` runs both steps with an audit trail.
:func:`validate_graph` and :func:`profile_graph` look at what landed.
"""

from ingest._bulk import BulkResult, bulk_import
from ingest._loader import Loader, LoadResult
from ingest._pipeline import SOURCES, IngestOutcome, ingest
from ingest._profile import ProfileResult, profile_graph
from ingest._readers import READERS, read_kaggle, read_lastfm, read_mpd, read_sessions_folder
from ingest._sink import IngestReport, TableSink
from ingest._synthetic import SyntheticConfig, Truth, generate, load_truth, oracle_scores
from ingest._tables import SCHEMAS, TABLES
from ingest._validate import Check, validate_graph

__all__ = [
    "READERS",
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
