// name: writeback/create_song_evidence
// Evidence edges from recommendations to Song nodes: (Recommendation)-[:BECAUSE {weight, kind, rank}]->(Song).
// params: $rows
UNWIND $rows AS row
MATCH (r:Recommendation {id: row.rec_id}), (e:Song {id: row.id})
CREATE (r)-[:BECAUSE {weight: row.weight, kind: row.kind, rank: row.rank}]->(e)
