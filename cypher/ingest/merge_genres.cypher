// name: ingest/merge_genres
// Create or update genres.
// params: $rows
UNWIND $rows AS row
MERGE (g:Genre {id: row.id})
SET g += row.props
