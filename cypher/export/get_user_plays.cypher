// name: export/get_user_plays
// One record per user given by internal id: all its plays as parallel lists of integers.
// params: $nids
UNWIND $nids AS nid
MATCH (u)
WHERE id(u) = nid
CALL (u) {
  MATCH (u)-[:HAD]->(se)-[p:PLAYED]->(s)
  RETURN collect(id(se)) AS session, collect(id(s)) AS song, collect(p.at) AS at,
         collect(coalesce(p.ms_played, -1)) AS ms_played,
         collect(coalesce(p.skipped, false)) AS skipped
}
RETURN nid, session, song, at, ms_played, skipped
