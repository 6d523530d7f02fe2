// name: writeback/create_evidence
// Evidence edges: (Recommendation)-[:BECAUSE {weight, kind, rank, named, share_of_plays, songs_in_common}]->(Song | User | Artist | Genre | Playlist).
// params: $rec, $node, $weight, $kind, $rank, $named, $share_of_plays, $songs_in_common
// Columns, one entry per edge. $rec: internal ids writeback/create_recommendations returned in
// this transaction; $node: internal ids from writeback/find_node_ids.
UNWIND range(0, size($rec) - 1) AS i
MATCH (r:Recommendation) WHERE id(r) = $rec[i]
MATCH (e) WHERE id(e) = $node[i]
CREATE (r)-[b:BECAUSE {weight: $weight[i], kind: $kind[i], rank: $rank[i], named: $named[i]}]->(e)
SET b.share_of_plays = $share_of_plays[i], b.songs_in_common = $songs_in_common[i]
