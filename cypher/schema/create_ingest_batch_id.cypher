// name: schema/create_ingest_batch_id
// Applied ingest batches, so that incremental loads add to aggregates exactly once.
// params:
CREATE CONSTRAINT ingest_batch_id IF NOT EXISTS FOR (n:IngestBatch) REQUIRE n.id IS UNIQUE
