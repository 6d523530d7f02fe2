// name: explain/similar_songs
// Songs most similar to $song_id by the model: learned-embedding cosine (graph models) or the item-item weight (EASE, ItemKNN).
// params: $song_id, $k
MATCH (s:Song {id: $song_id})-[x:SIMILAR_TO]->(t:Song)
OPTIONAL MATCH (t)-[:BY]->(a:Artist)
RETURN t.id AS song_id, t.name AS song, a.name AS artist, x.score AS score, x.rank AS rank, x.run_id AS run_id
ORDER BY x.rank
LIMIT $k
