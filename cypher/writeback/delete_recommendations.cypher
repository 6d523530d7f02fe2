// name: writeback/delete_recommendations
// Remove these users' previous recommendations (any run), in the transaction that writes the new ones.
// params: $users
// $users: internal ids (writeback/find_node_ids): an index seek after the first user's deletes
// would gather every node deleted so far.
UNWIND $users AS nid
MATCH (u:User) WHERE id(u) = nid
CALL (u) {
  MATCH (u)-[:RECEIVED]->(r:Recommendation)
  DETACH DELETE r
}
CALL (u) {
  MATCH (u)-[x:RECOMMENDED]->(:Song)
  DELETE x
}
