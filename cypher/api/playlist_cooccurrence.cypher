// name: api/playlist_cooccurrence
// Playlist continuation candidates: songs sharing playlists with the seed songs, by shared-playlist count.
// params: $song_ids, $k
UNWIND $song_ids AS id
MATCH (:Song {id: id})<-[:CONTAINS]-(p:Playlist)-[:CONTAINS]->(t:Song)
WHERE NOT t.id IN $song_ids
WITH t, count(*) AS pairs, count(DISTINCT p) AS playlists
ORDER BY pairs DESC, playlists DESC, t.id
LIMIT $k
RETURN t.id AS song_id, toFloat(pairs) AS score
