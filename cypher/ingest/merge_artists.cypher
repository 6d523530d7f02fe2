// name: ingest/merge_artists
// Create or update artists.
// params: $rows
UNWIND $rows AS row
MERGE (a:Artist {id: row.id})
SET a += row.props
