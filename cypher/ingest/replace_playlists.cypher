// name: ingest/replace_playlists
// Create or update playlists, their owner, and replace their ordered tracks.
// params: $rows
UNWIND $rows AS row
MERGE (p:Playlist {id: row.id})
SET p += row.props
WITH p, row
CALL (p) {
  MATCH (p)-[c:CONTAINS]->()
  DELETE c
}
CALL (p, row) {
  WITH p, row WHERE row.user_id IS NOT NULL
  MATCH (u:User {id: row.user_id})
  MERGE (u)-[:CREATED]->(p)
}
WITH p, row
UNWIND range(0, size(row.songs) - 1) AS i
MATCH (s:Song {id: row.songs[i]})
CREATE (p)-[:CONTAINS {pos: row.pos[i]}]->(s)
