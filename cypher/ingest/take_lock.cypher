// name: ingest/take_lock
// Serialise loader writes of aggregates and entities (CLI ingests, API workers): run first.
// params: $aggregates
// The SET takes the IngestLock node's write lock, held until the transaction ends, so these
// writes of several loaders to one database never interleave (a plays chunk's sessions are
// written before, without it: see ingest/_loader.py). `aggregates` counts the transactions
// that wrote aggregates; a loader that finds it moved since its own last one knows another
// loader wrote in between, and stops trusting what it remembered about aggregates.
MERGE (l:IngestLock {id: 'ingest'})
SET l.writes = coalesce(l.writes, 0) + 1,
    l.aggregates = coalesce(l.aggregates, 0) + CASE WHEN $aggregates THEN 1 ELSE 0 END
RETURN l.aggregates AS aggregates
