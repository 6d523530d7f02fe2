"""spotify-engine: gnn."""
