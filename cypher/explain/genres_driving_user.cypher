// name: explain/genres_driving_user
// Which genres drive user $user_id's recommendations: evidence weight reaching each genre, next to the user's AFFINITY (share of plays).
// params: $user_id
MATCH (u:User {id: $user_id})
CALL (u) {
  MATCH (u)-[:RECEIVED]->(r:Recommendation)-[b:BECAUSE]->(g:Genre)
  RETURN g, sum(b.weight) AS evidence_weight, count(DISTINCT r) AS recommendations
  UNION
  MATCH (u)-[:RECEIVED]->(r:Recommendation)-[b:BECAUSE]->(:Song|Artist)-[:IN_GENRE]->(g:Genre)
  RETURN g, sum(b.weight) AS evidence_weight, count(DISTINCT r) AS recommendations
}
WITH u, g, sum(evidence_weight) AS evidence_weight, max(recommendations) AS recommendations
OPTIONAL MATCH (u)-[af:AFFINITY]->(g)
RETURN g.id AS genre_id, g.name AS genre, evidence_weight, recommendations, af.weight AS affinity
ORDER BY evidence_weight DESC
