// name: export/sample_user_songs
// Up to $k songs each given user LISTENED to, drawn at random: one hop of a sampler (internal ids).
// params: $nids, $k
UNWIND $nids AS nid
MATCH (u:User)
WHERE id(u) = nid
CALL (u) {
  MATCH (u)-[:LISTENED]->(s:Song)
  WITH s ORDER BY rand() LIMIT $k
  RETURN collect(id(s)) AS nbrs
}
RETURN nid, nbrs
