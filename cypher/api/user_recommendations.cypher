// name: api/user_recommendations
// A user's precomputed recommendations (best first) within the rules (genre, excluded songs and artists), with their weighted evidence, and the user's number of sessions (so the API sees plays posted since training).
// params: $user_id, $k, $genre, $exclude_songs, $exclude_artists
MATCH (u:User {id: $user_id})
CALL (u) {
  MATCH (u)-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song)
  WHERE NOT s.id IN $exclude_songs
    AND NOT EXISTS { MATCH (s)-[:BY]->(x:Artist) WHERE x.id IN $exclude_artists OR toLower(x.name) IN $exclude_artists }
    AND ($genre IS NULL OR EXISTS {
      MATCH (s)-[:IN_GENRE]->(g:Genre) WHERE g.id = $genre OR toLower(g.name) = toLower($genre)
    })
  WITH r, s ORDER BY r.rank LIMIT $k
  OPTIONAL MATCH (s)-[:BY]->(a:Artist)
  CALL (r) {
    OPTIONAL MATCH (r)-[b:BECAUSE]->(e)
    WITH b, e ORDER BY b.rank
    RETURN [x IN collect(CASE WHEN b IS NULL THEN NULL ELSE {kind: b.kind, weight: b.weight,
            label: labels(e)[0], id: e.id, name: coalesce(e.name, e.id)} END) WHERE x IS NOT NULL] AS evidence
  }
  RETURN collect({rank: r.rank, song_id: s.id, name: s.name, artist: a.name, score: r.score,
                  run_id: r.run_id, model: r.model, reason: r.reason, evidence: evidence}) AS items
}
RETURN u.id AS user_id, items, COUNT { (u)-[:HAD]->() } AS sessions
