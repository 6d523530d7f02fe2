// name: api/similar_songs
// Songs most similar to $song_id by the model (SIMILAR_TO, best first), within the rules (genre, excluded songs and artists).
// params: $song_id, $k, $genre, $exclude_songs, $exclude_artists
MATCH (s:Song {id: $song_id})-[x:SIMILAR_TO]->(t:Song)
WHERE NOT t.id IN $exclude_songs
  AND NOT EXISTS { MATCH (t)-[:BY]->(y:Artist) WHERE y.id IN $exclude_artists OR toLower(y.name) IN $exclude_artists }
  AND ($genre IS NULL OR EXISTS {
    MATCH (t)-[:IN_GENRE]->(g:Genre) WHERE g.id = $genre OR toLower(g.name) = toLower($genre)
  })
OPTIONAL MATCH (t)-[:BY]->(a:Artist)
RETURN t.id AS song_id, t.name AS song, a.name AS artist, x.score AS score, x.rank AS rank, x.run_id AS run_id
ORDER BY x.rank
LIMIT $k
