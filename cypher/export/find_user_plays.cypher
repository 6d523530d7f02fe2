// name: export/find_user_plays
// One record per user: its plays before $until (null: all) of songs in $songs (null: any).
// params: $nids, $until, $songs
UNWIND $nids AS nid
MATCH (u)
WHERE id(u) = nid
CALL (u) {
  MATCH (u)-[:HAD]->(se)-[p:PLAYED]->(s)
  WHERE ($until IS NULL OR p.at < $until) AND ($songs IS NULL OR id(s) IN $songs)
  RETURN collect(id(se)) AS session, collect(id(s)) AS song, collect(p.at) AS at,
         collect(coalesce(p.ms_played, -1)) AS ms_played,
         collect(coalesce(p.skipped, false)) AS skipped
}
RETURN nid, session, song, at, ms_played, skipped
