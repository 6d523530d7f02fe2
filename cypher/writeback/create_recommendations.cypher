// name: writeback/create_recommendations
// Write ranked recommendations, reified so that evidence can point at them; returns their internal ids.
// params: $id, $user, $song, $rank, $score, $reason, $run_id, $model, $created_at
// Columns, one entry per recommendation; $user and $song are internal ids (writeback/find_node_ids).
// Returns each one's position in the columns (rows) with its internal id (nids), pair by pair.
UNWIND range(0, size($id) - 1) AS i
MATCH (u:User) WHERE id(u) = $user[i]
MATCH (s:Song) WHERE id(s) = $song[i]
CREATE (r:Recommendation {id: $id[i], rank: $rank[i], score: $score[i], run_id: $run_id,
                          model: $model, created_at: $created_at, reason: $reason[i]})
CREATE (u)-[:RECEIVED]->(r)-[:OF]->(s)
CREATE (u)-[:RECOMMENDED {score: $score[i], rank: $rank[i], run_id: $run_id, model: $model,
                          created_at: $created_at}]->(s)
RETURN collect(i) AS rows, collect(id(r)) AS nids
