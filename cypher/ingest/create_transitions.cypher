// name: ingest/create_transitions
// FOLLOWED_BY pairs that do not exist yet (the loader knows: see ingest/find_fresh): plain CREATE.
// Rows come as parallel lists (columns).
// params: $a, $b, $count
UNWIND range(0, size($a) - 1) AS i
MATCH (a:Song) WHERE id(a) = $a[i]
MATCH (b:Song) WHERE id(b) = $b[i]
CREATE (a)-[:FOLLOWED_BY {count: $count[i]}]->(b)
