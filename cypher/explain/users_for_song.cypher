// name: explain/users_for_song
// Which users were recommended song $song_id, at which rank, and their strongest reason.
// params: $song_id, $k
MATCH (s:Song {id: $song_id})<-[:OF]-(r:Recommendation)<-[:RECEIVED]-(u:User)
CALL (r) {
  OPTIONAL MATCH (r)-[b:BECAUSE]->(e)
  WITH b, e ORDER BY b.rank LIMIT 1
  RETURN b.kind AS top_kind, coalesce(e.name, e.id) AS top_reason, b.weight AS top_weight
}
RETURN u.id AS user_id, u.name AS user, r.rank AS rank, r.score AS score, top_kind, top_reason, top_weight
ORDER BY rank, score DESC
LIMIT $k
