// name: export/sample_song_users
// Up to $k listeners of each given song, drawn at random: one hop of a sampler (internal ids).
// params: $nids, $k
UNWIND $nids AS nid
MATCH (s:Song)
WHERE id(s) = nid
CALL (s) {
  MATCH (u:User)-[:LISTENED]->(s)
  WITH u ORDER BY rand() LIMIT $k
  RETURN collect(id(u)) AS nbrs
}
RETURN nid, nbrs
