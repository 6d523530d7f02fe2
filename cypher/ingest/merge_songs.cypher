// name: ingest/merge_songs
// Create or update songs with their properties and audio features; link artist and album.
// params: $rows
UNWIND $rows AS row
MERGE (s:Song {id: row.id})
SET s += row.props
WITH s, row
CALL (s, row) {
  WITH s, row WHERE row.artist_id IS NOT NULL
  MATCH (a:Artist {id: row.artist_id})
  MERGE (s)-[:BY]->(a)
}
CALL (s, row) {
  WITH s, row WHERE row.album_id IS NOT NULL
  MATCH (al:Album {id: row.album_id})
  MERGE (s)-[:ON]->(al)
}
