// name: ingest/add_transitions
// Add a batch's consecutive-play counts to (Song)-[:FOLLOWED_BY {count}]->(Song).
// params: $rows
UNWIND $rows AS row
MATCH (a:Song {id: row.a}), (b:Song {id: row.b})
MERGE (a)-[f:FOLLOWED_BY]->(b)
ON CREATE SET f.count = row.count
ON MATCH SET f.count = f.count + row.count
