// name: ingest/find_fresh
// Users without LISTENED and songs without outgoing FOLLOWED_BY: their new aggregates can be created, not merged.
// params: $user_ids, $song_ids
CALL (){
  UNWIND $user_ids AS id
  MATCH (u:User {id: id}) WHERE NOT EXISTS { (u)-[:LISTENED]->() }
  RETURN collect(id) AS users
}
CALL (){
  UNWIND $song_ids AS id
  MATCH (s:Song {id: id}) WHERE NOT EXISTS { (s)-[:FOLLOWED_BY]->() }
  RETURN collect(id) AS songs
}
RETURN users, songs
