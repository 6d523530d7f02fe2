// name: api/allowed_songs
// Names and artists of the songs among $song_ids that exist and pass the rules (input order is not kept).
// params: $song_ids, $genre, $exclude_songs, $exclude_artists
UNWIND $song_ids AS id
MATCH (s:Song {id: id})
WHERE NOT s.id IN $exclude_songs
  AND NOT EXISTS { MATCH (s)-[:BY]->(x:Artist) WHERE x.id IN $exclude_artists OR toLower(x.name) IN $exclude_artists }
  AND ($genre IS NULL OR EXISTS {
    MATCH (s)-[:IN_GENRE]->(g:Genre) WHERE g.id = $genre OR toLower(g.name) = toLower($genre)
  })
OPTIONAL MATCH (s)-[:BY]->(a:Artist)
RETURN s.id AS song_id, s.name AS name, a.name AS artist
