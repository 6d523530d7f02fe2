// name: export/list_user_listened
// One record per user: the songs of its LISTENED relationships, as internal ids.
// params:
MATCH (u:User)
CALL (u) {
  MATCH (u)-[:LISTENED]->(s:Song)
  RETURN collect(id(s)) AS song
}
RETURN id(u) AS nid, song
