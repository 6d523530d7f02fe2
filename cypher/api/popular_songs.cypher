// name: api/popular_songs
// The most played songs overall, or within genres given by id or name ($genres empty = all).
// params: $genres, $k
MATCH (:User)-[l:LISTENED]->(s:Song)
WHERE size($genres) = 0 OR EXISTS {
  MATCH (s)-[:IN_GENRE]->(g:Genre) WHERE g.id IN $genres OR toLower(g.name) IN $genres
}
WITH s, sum(l.plays) AS plays, count(l) AS listeners
ORDER BY plays DESC, listeners DESC, s.id
LIMIT $k
OPTIONAL MATCH (s)-[:BY]->(a:Artist)
RETURN s.id AS song_id, s.name AS name, a.name AS artist, plays AS score
