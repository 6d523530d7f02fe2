"""spotify-engine: spotify_engine."""
