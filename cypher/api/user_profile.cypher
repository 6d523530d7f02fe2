// name: api/user_profile
// A user's listening profile: stats, top genres (plays weighted by genre membership) and top artists.
// params: $user_id, $top
MATCH (u:User {id: $user_id})
CALL (u) {
  OPTIONAL MATCH (u)-[l:LISTENED]->(:Song)
  RETURN sum(l.plays) AS plays, count(l) AS songs, sum(l.ms_played) AS ms_played,
         sum(l.skips) AS skips, min(l.first_at) AS first_at, max(l.last_at) AS last_at
}
CALL (u) {
  RETURN COUNT { (u)-[:HAD]->(:Session) } AS sessions
}
CALL (u) {
  OPTIONAL MATCH (u)-[l:LISTENED]->(:Song)-[ig:IN_GENRE]->(g:Genre)
  WITH g, sum(l.plays * coalesce(ig.weight, 1.0)) AS w WHERE g IS NOT NULL
  ORDER BY w DESC, g.id LIMIT $top
  RETURN collect({id: g.id, name: g.name, weight: w}) AS genres
}
CALL (u) {
  OPTIONAL MATCH (u)-[l:LISTENED]->(:Song)-[:BY]->(a:Artist)
  WITH a, sum(l.plays) AS w WHERE a IS NOT NULL
  ORDER BY w DESC, a.id LIMIT $top
  RETURN collect({id: a.id, name: a.name, weight: w}) AS artists
}
RETURN u.id AS user_id, u.name AS name, plays, songs, ms_played, skips, first_at, last_at,
       sessions, genres, artists
