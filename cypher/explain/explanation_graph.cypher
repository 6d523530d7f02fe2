// name: explain/explanation_graph
// The explanation as a graph for Neo4j Browser: user -> recommendation -> song, and the weighted evidence.
// params: $user_id, $song_id
MATCH p = (u:User {id: $user_id})-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song {id: $song_id})
OPTIONAL MATCH q = (r)-[:BECAUSE]->(e)
RETURN p, collect(q) AS evidence
