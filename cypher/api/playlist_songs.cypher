// name: api/playlist_songs
// A playlist's name and its songs in order (found = false when there is no such playlist).
// params: $playlist_id
OPTIONAL MATCH (p:Playlist {id: $playlist_id})
CALL (p) {
  OPTIONAL MATCH (p)-[c:CONTAINS]->(s:Song)
  WITH s, c ORDER BY c.pos
  RETURN [x IN collect(s.id) WHERE x IS NOT NULL] AS song_ids
}
RETURN p IS NOT NULL AS found, p.name AS name, song_ids
