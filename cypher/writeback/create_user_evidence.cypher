// name: writeback/create_user_evidence
// Evidence edges from recommendations to User nodes: (Recommendation)-[:BECAUSE {weight, kind, rank}]->(User).
// params: $rows
UNWIND $rows AS row
MATCH (r:Recommendation {id: row.rec_id}), (e:User {id: row.id})
CREATE (r)-[:BECAUSE {weight: row.weight, kind: row.kind, rank: row.rank}]->(e)
