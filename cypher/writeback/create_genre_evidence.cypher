// name: writeback/create_genre_evidence
// Evidence edges from recommendations to Genre nodes: (Recommendation)-[:BECAUSE {weight, kind, rank}]->(Genre).
// params: $rows
UNWIND $rows AS row
MATCH (r:Recommendation {id: row.rec_id}), (e:Genre {id: row.id})
CREATE (r)-[:BECAUSE {weight: row.weight, kind: row.kind, rank: row.rank}]->(e)
