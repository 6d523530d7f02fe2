// name: ingest/merge_song_genres
// Song genre membership with a weight.
// params: $rows
UNWIND $rows AS row
MATCH (s:Song {id: row.song_id}), (g:Genre {id: row.genre_id})
MERGE (s)-[r:IN_GENRE]->(g)
SET r.weight = row.weight
