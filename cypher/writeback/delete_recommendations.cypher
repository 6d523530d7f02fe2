// name: writeback/delete_recommendations
// Remove these users' previous recommendations (any run), in the transaction that writes the new ones.
// params: $user_ids
UNWIND $user_ids AS uid
MATCH (u:User {id: uid})
CALL (u) {
  MATCH (u)-[:RECEIVED]->(r:Recommendation)
  DETACH DELETE r
}
CALL (u) {
  MATCH (u)-[x:RECOMMENDED]->(:Song)
  DELETE x
}
