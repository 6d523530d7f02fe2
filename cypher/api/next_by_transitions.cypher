// name: api/next_by_transitions
// Next-song candidates from FOLLOWED_BY counts out of the recent songs, the latest weighing most.
// params: $song_ids, $k
WITH $song_ids AS recent
UNWIND range(0, size(recent) - 1) AS i
MATCH (a:Song {id: recent[i]})-[f:FOLLOWED_BY]->(b:Song)
WHERE NOT b.id IN recent
WITH b, sum(toFloat(f.count) * 0.5 ^ (size(recent) - 1 - i)) AS score
ORDER BY score DESC, b.id
LIMIT $k
RETURN b.id AS song_id, score
