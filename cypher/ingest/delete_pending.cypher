// name: ingest/delete_pending
// Take a chunk's marker, under the IngestLock, before adding its aggregates: 0 means another
// loader applied them already (ingest/apply_pending), and they must not be added twice.
// params: $id
MATCH (p:IngestPending {id: $id})
DELETE p
RETURN count(*) AS deleted
