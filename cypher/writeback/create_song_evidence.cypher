// name: writeback/create_song_evidence
// Evidence edges from recommendations to Song nodes: (Recommendation)-[:BECAUSE {weight, kind, rank, named, share_of_plays, songs_in_common}]->(Song).
// params: $rows
UNWIND $rows AS row
MATCH (r:Recommendation {id: row.rec_id}), (e:Song {id: row.id})
CREATE (r)-[b:BECAUSE {weight: row.weight, kind: row.kind, rank: row.rank, named: row.named}]->(e)
SET b.share_of_plays = row.share_of_plays, b.songs_in_common = row.songs_in_common
