// name: writeback/create_artist_evidence
// Evidence edges from recommendations to Artist nodes: (Recommendation)-[:BECAUSE {weight, kind, rank}]->(Artist).
// params: $rows
UNWIND $rows AS row
MATCH (r:Recommendation {id: row.rec_id}), (e:Artist {id: row.id})
CREATE (r)-[:BECAUSE {weight: row.weight, kind: row.kind, rank: row.rank}]->(e)
