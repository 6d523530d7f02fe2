// name: writeback/create_affinity
// The user's listening per genre: (User)-[:AFFINITY {weight, plays, rank, run_id}]->(Genre), weight = share of the user's plays.
// params: $a, $b, $weight, $plays, $rank, $run_id
// Columns, one entry per edge; $a (users) and $b (genres) are internal ids (writeback/find_node_ids).
UNWIND range(0, size($a) - 1) AS i
MATCH (u:User) WHERE id(u) = $a[i]
MATCH (g:Genre) WHERE id(g) = $b[i]
CREATE (u)-[:AFFINITY {weight: $weight[i], plays: $plays[i], rank: $rank[i], run_id: $run_id}]->(g)
