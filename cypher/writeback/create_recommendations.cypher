// name: writeback/create_recommendations
// Write ranked recommendations, reified so that evidence can point at them.
// params: $rows, $run_id, $model, $created_at
UNWIND $rows AS row
MATCH (u:User {id: row.user_id}), (s:Song {id: row.song_id})
CREATE (r:Recommendation {id: row.id, rank: row.rank, score: row.score, run_id: $run_id,
                          model: $model, created_at: $created_at, reason: row.reason})
CREATE (u)-[:RECEIVED]->(r)-[:OF]->(s)
CREATE (u)-[:RECOMMENDED {score: row.score, rank: row.rank, run_id: $run_id, model: $model,
                          created_at: $created_at}]->(s)
