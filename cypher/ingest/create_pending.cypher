// name: ingest/create_pending
// Mark sessions written without their aggregates yet (the loader's first transaction of a chunk).
// params: $id, $sessions
// The marker commits with the sessions; the chunk's second transaction deletes it under the
// IngestLock while it adds the aggregates (ingest/delete_pending). A marker that outlives its
// loader (killed between the two) is applied by the next one (ingest/apply_pending).
CREATE (:IngestPending {id: $id, sessions: $sessions, created_at: timestamp()})
