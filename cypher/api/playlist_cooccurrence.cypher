// name: api/playlist_cooccurrence
// Playlist continuation candidates: songs sharing playlists with the seed songs, by shared-playlist count, within the rules.
// params: $song_ids, $k, $genre, $exclude_songs, $exclude_artists
UNWIND $song_ids AS id
MATCH (:Song {id: id})<-[:CONTAINS]-(p:Playlist)-[:CONTAINS]->(t:Song)
WHERE NOT t.id IN $song_ids AND NOT t.id IN $exclude_songs
  AND NOT EXISTS { MATCH (t)-[:BY]->(x:Artist) WHERE x.id IN $exclude_artists OR toLower(x.name) IN $exclude_artists }
  AND ($genre IS NULL OR EXISTS {
    MATCH (t)-[:IN_GENRE]->(g:Genre) WHERE g.id = $genre OR toLower(g.name) = toLower($genre)
  })
WITH t, count(*) AS pairs, count(DISTINCT p) AS playlists
ORDER BY pairs DESC, playlists DESC, t.id
LIMIT $k
RETURN t.id AS song_id, toFloat(pairs) AS score
