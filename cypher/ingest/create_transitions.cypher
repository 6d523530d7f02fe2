// name: ingest/create_transitions
// FOLLOWED_BY from songs that had none before this transaction: plain CREATE (rows are distinct pairs).
// params: $rows
UNWIND $rows AS row
MATCH (a:Song {id: row.a}), (b:Song {id: row.b})
CREATE (a)-[:FOLLOWED_BY {count: row.count}]->(b)
