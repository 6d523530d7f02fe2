// name: ingest/add_transitions
// Add a batch's consecutive-play counts to (Song)-[:FOLLOWED_BY {count}]->(Song).
// Rows come as parallel lists (columns).
// params: $a, $b, $count
UNWIND range(0, size($a) - 1) AS i
MATCH (a:Song) WHERE id(a) = $a[i]
MATCH (b:Song) WHERE id(b) = $b[i]
WITH a, b, $count[i] AS count
MERGE (a)-[f:FOLLOWED_BY]->(b)
ON CREATE SET f.count = count
ON MATCH SET f.count = f.count + count
