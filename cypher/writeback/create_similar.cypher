// name: writeback/create_similar
// Top-k nearest songs by learned embedding: (Song)-[:SIMILAR_TO {score, rank, run_id}]->(Song).
// params: $rows, $run_id
UNWIND $rows AS row
MATCH (a:Song {id: row.a}), (b:Song {id: row.b})
CREATE (a)-[:SIMILAR_TO {score: row.score, rank: row.rank, run_id: $run_id}]->(b)
