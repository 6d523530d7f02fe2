// name: ingest/find_pending
// Markers of sessions still waiting for their aggregates (ingest/create_pending), oldest first.
// params:
MATCH (p:IngestPending)
RETURN p.id AS id, size(p.sessions) AS sessions
ORDER BY p.created_at, p.id
