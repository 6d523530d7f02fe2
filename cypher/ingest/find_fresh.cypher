// name: ingest/find_fresh
// Users without LISTENED and songs without outgoing FOLLOWED_BY (internal ids): every aggregate
// of theirs that this load writes is new, so it can be created, not merged.
// params: $users, $songs
CALL (){
  UNWIND $users AS nid
  MATCH (u:User) WHERE id(u) = nid AND NOT EXISTS { (u)-[:LISTENED]->() }
  RETURN collect(nid) AS users
}
CALL (){
  UNWIND $songs AS nid
  MATCH (s:Song) WHERE id(s) = nid AND NOT EXISTS { (s)-[:FOLLOWED_BY]->() }
  RETURN collect(nid) AS songs
}
RETURN users, songs
