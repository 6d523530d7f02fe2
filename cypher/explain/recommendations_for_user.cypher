// name: explain/recommendations_for_user
// Recommendations for user $user_id with their top three reasons, best first (named: the sentence names it).
// params: $user_id, $k
MATCH (u:User {id: $user_id})-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song)
WHERE r.rank <= $k
OPTIONAL MATCH (s)-[:BY]->(a:Artist)
CALL (r) {
  MATCH (r)-[b:BECAUSE]->(e)
  WITH b, e ORDER BY b.rank LIMIT 3
  RETURN collect({kind: b.kind, weight: b.weight, name: coalesce(e.name, e.id),
                  named: coalesce(b.named, false)}) AS reasons
}
RETURN r.rank AS rank, s.id AS song_id, s.name AS song, a.name AS artist, r.score AS score,
       r.reason AS reason, reasons
ORDER BY rank
