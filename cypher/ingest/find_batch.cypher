// name: ingest/find_batch
// Has this ingest batch (content hash of its tables) been applied completely?
// params: $id
OPTIONAL MATCH (b:IngestBatch {id: $id})
RETURN b IS NOT NULL AS applied
