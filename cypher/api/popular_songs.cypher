// name: api/popular_songs
// The most played songs overall or within genres given by id or name ($genres empty = all), excluded songs and artists left out.
// params: $genres, $k, $exclude_songs, $exclude_artists
MATCH (:User)-[l:LISTENED]->(s:Song)
WHERE (size($genres) = 0 OR EXISTS {
  MATCH (s)-[:IN_GENRE]->(g:Genre) WHERE g.id IN $genres OR toLower(g.name) IN $genres
})
  AND NOT s.id IN $exclude_songs
  AND NOT EXISTS { MATCH (s)-[:BY]->(x:Artist) WHERE x.id IN $exclude_artists OR toLower(x.name) IN $exclude_artists }
WITH s, sum(l.plays) AS plays, count(l) AS listeners
ORDER BY plays DESC, listeners DESC, s.id
LIMIT $k
OPTIONAL MATCH (s)-[:BY]->(a:Artist)
RETURN s.id AS song_id, s.name AS name, a.name AS artist, plays AS score
