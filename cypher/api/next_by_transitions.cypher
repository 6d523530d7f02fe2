// name: api/next_by_transitions
// Next-song candidates from FOLLOWED_BY counts out of the recent songs (the latest weighing most), within the rules.
// params: $song_ids, $k, $genre, $exclude_songs, $exclude_artists
WITH $song_ids AS recent
UNWIND range(0, size(recent) - 1) AS i
MATCH (a:Song {id: recent[i]})-[f:FOLLOWED_BY]->(b:Song)
WHERE NOT b.id IN recent AND NOT b.id IN $exclude_songs
  AND NOT EXISTS { MATCH (b)-[:BY]->(x:Artist) WHERE x.id IN $exclude_artists OR toLower(x.name) IN $exclude_artists }
  AND ($genre IS NULL OR EXISTS {
    MATCH (b)-[:IN_GENRE]->(g:Genre) WHERE g.id = $genre OR toLower(g.name) = toLower($genre)
  })
WITH b, sum(toFloat(f.count) * 0.5 ^ (size(recent) - 1 - i)) AS score
ORDER BY score DESC, b.id
LIMIT $k
RETURN b.id AS song_id, score
