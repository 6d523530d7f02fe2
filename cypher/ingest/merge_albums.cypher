// name: ingest/merge_albums
// Create or update albums and link them to their artist.
// params: $rows
UNWIND $rows AS row
MERGE (al:Album {id: row.id})
SET al.name = row.name
WITH al, row WHERE row.artist_id IS NOT NULL
MATCH (a:Artist {id: row.artist_id})
MERGE (al)-[:BY]->(a)
