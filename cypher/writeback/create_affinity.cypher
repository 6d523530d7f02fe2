// name: writeback/create_affinity
// Learned genre influence per user: (User)-[:AFFINITY {weight, run_id}]->(Genre).
// params: $rows, $run_id
UNWIND $rows AS row
MATCH (u:User {id: row.user_id}), (g:Genre {id: row.genre_id})
CREATE (u)-[:AFFINITY {weight: row.weight, run_id: $run_id}]->(g)
