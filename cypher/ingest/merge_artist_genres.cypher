// name: ingest/merge_artist_genres
// Artist genre membership with a weight.
// params: $rows
UNWIND $rows AS row
MATCH (a:Artist {id: row.artist_id}), (g:Genre {id: row.genre_id})
MERGE (a)-[r:IN_GENRE]->(g)
SET r.weight = row.weight
