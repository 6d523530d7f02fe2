"""spotify-engine: ingest."""
