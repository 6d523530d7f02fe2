// name: ingest/find_node_ids
// Internal ids of users and songs by their stable ids, resolved once per load so that the
// plays statements match nodes by id instead of seeking the id indexes for every row.
// params: $user_ids, $song_ids
CALL () {
  UNWIND $user_ids AS key
  MATCH (u:User {id: key})
  RETURN collect(key) AS user_keys, collect(id(u)) AS user_nids
}
CALL () {
  UNWIND $song_ids AS key
  MATCH (s:Song {id: key})
  RETURN collect(key) AS song_keys, collect(id(s)) AS song_nids
}
RETURN user_keys, user_nids, song_keys, song_nids
