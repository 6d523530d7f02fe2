// name: api/get_song
// One song with its artist, album, genres and how often it was played.
// params: $song_id
MATCH (s:Song {id: $song_id})
OPTIONAL MATCH (s)-[:BY]->(a:Artist)
OPTIONAL MATCH (s)-[:ON]->(al:Album)
CALL (s) {
  OPTIONAL MATCH (s)-[ig:IN_GENRE]->(g:Genre)
  WITH g, ig ORDER BY ig.weight DESC, g.id
  RETURN [x IN collect(CASE WHEN g IS NULL THEN NULL ELSE {id: g.id, name: g.name, weight: ig.weight} END)
          WHERE x IS NOT NULL] AS genres
}
CALL (s) {
  OPTIONAL MATCH (:User)-[l:LISTENED]->(s)
  RETURN coalesce(sum(l.plays), 0) AS plays, count(l) AS listeners
}
RETURN s.id AS song_id, s.name AS name, s.duration_ms AS duration_ms, s.popularity AS popularity,
       a.id AS artist_id, a.name AS artist, al.id AS album_id, al.name AS album, genres, plays, listeners
