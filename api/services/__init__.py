"""Service functions behind the routers: keyword-only, no HTTP, Cypher only by name."""
