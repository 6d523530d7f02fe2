"""spotify-engine: api."""
