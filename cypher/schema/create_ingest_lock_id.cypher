// name: schema/create_ingest_lock_id
// The one IngestLock node that loader transactions lock (ingest/take_lock); unique, so that
// two loaders starting at once on an empty database MERGE the same node.
// params:
CREATE CONSTRAINT ingest_lock_id IF NOT EXISTS FOR (n:IngestLock) REQUIRE n.id IS UNIQUE
