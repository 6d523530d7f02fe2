// name: writeback/create_affinity
// The user's listening per genre: (User)-[:AFFINITY {weight, plays, rank, run_id}]->(Genre), weight = share of the user's plays.
// params: $rows, $run_id
UNWIND $rows AS row
MATCH (u:User {id: row.user_id}), (g:Genre {id: row.genre_id})
CREATE (u)-[:AFFINITY {weight: row.weight, plays: row.plays, rank: row.rank, run_id: $run_id}]->(g)
