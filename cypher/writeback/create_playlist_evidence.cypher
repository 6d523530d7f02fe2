// name: writeback/create_playlist_evidence
// Evidence edges from recommendations to Playlist nodes: (Recommendation)-[:BECAUSE {weight, kind, rank}]->(Playlist).
// params: $rows
UNWIND $rows AS row
MATCH (r:Recommendation {id: row.rec_id}), (e:Playlist {id: row.id})
CREATE (r)-[:BECAUSE {weight: row.weight, kind: row.kind, rank: row.rank}]->(e)
