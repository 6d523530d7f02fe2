// name: writeback/create_similar
// Top-k nearest songs by learned embedding: (Song)-[:SIMILAR_TO {score, rank, run_id}]->(Song).
// params: $a, $b, $score, $rank, $run_id
// Columns, one entry per edge; $a and $b are internal ids (writeback/find_node_ids).
UNWIND range(0, size($a) - 1) AS i
MATCH (a:Song) WHERE id(a) = $a[i]
MATCH (b:Song) WHERE id(b) = $b[i]
CREATE (a)-[:SIMILAR_TO {score: $score[i], rank: $rank[i], run_id: $run_id}]->(b)
