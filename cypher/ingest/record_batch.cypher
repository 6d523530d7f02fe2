// name: ingest/record_batch
// Record an applied ingest batch with its source and counts.
// params: $id, $props
MERGE (b:IngestBatch {id: $id})
SET b += $props
