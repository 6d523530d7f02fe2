// name: ingest/find_sessions
// Which of these session ids are already in the graph (sessions are loaded exactly once).
// params: $ids
UNWIND $ids AS id
MATCH (se:Session {id: id})
RETURN collect(id) AS existing
