// name: api/user_recommendations_many
// api/user_recommendations for many users in one read (the API's cache warm-up at start and its background refresh of expired entries): one row per user that exists, the same columns.
// params: $user_ids
UNWIND $user_ids AS user_id
MATCH (u:User {id: user_id})
CALL (u) {
  MATCH (u)-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song)
  WITH r, s ORDER BY r.rank
  OPTIONAL MATCH (s)-[:BY]->(a:Artist)
  CALL (r) {
    OPTIONAL MATCH (r)-[b:BECAUSE]->(e)
    WITH b, e ORDER BY b.rank
    RETURN [x IN collect(CASE WHEN b IS NULL THEN NULL ELSE {kind: b.kind, weight: b.weight,
            label: labels(e)[0], id: e.id, name: coalesce(e.name, e.id)} END) WHERE x IS NOT NULL] AS evidence
  }
  RETURN collect({rank: r.rank, song_id: s.id, name: s.name, artist: a.name, score: r.score,
                  run_id: r.run_id, model: r.model, reason: r.reason, evidence: evidence,
                  artist_keys: [(s)-[:BY]->(x:Artist) | x.id] + [(s)-[:BY]->(x:Artist) | toLower(x.name)],
                  genre_ids: [(s)-[:IN_GENRE]->(g:Genre) | g.id],
                  genre_names: [(s)-[:IN_GENRE]->(g:Genre) | toLower(g.name)]}) AS items
}
RETURN u.id AS user_id, items, COUNT { (u)-[:HAD]->() } AS sessions, COUNT { (u)-[:LISTENED]->(:Song) } AS songs
