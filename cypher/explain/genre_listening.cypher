// name: explain/genre_listening
// User $user_id's plays per genre (a play counts for each genre its song is IN_GENRE) and share of all their plays, next to the AFFINITY written back.
// params: $user_id
MATCH (u:User {id: $user_id})
CALL (u) {
  OPTIONAL MATCH (u)-[l:LISTENED]->(:Song)
  RETURN coalesce(sum(l.plays), 0) AS total
}
CALL (u) {
  MATCH (u)-[l:LISTENED]->(:Song)-[:IN_GENRE]->(g:Genre)
  RETURN g, sum(l.plays) AS plays
  UNION
  MATCH (u)-[:AFFINITY]->(g:Genre)
  RETURN g, 0 AS plays
}
WITH u, total, g, sum(plays) AS plays
OPTIONAL MATCH (u)-[a:AFFINITY]->(g)
RETURN g.id AS genre_id, g.name AS genre, plays,
       toFloat(plays) / CASE total WHEN 0 THEN 1 ELSE total END AS share_of_plays,
       a.weight AS affinity, a.rank AS affinity_rank
ORDER BY plays DESC, genre_id
