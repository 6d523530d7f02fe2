// name: export/get_song_genres
// (Song)-[:IN_GENRE {weight}]->(Genre) for songs given by internal id (missing weight: 1.0).
// params: $nids
UNWIND $nids AS nid
MATCH (s:Song)-[r:IN_GENRE]->(g:Genre)
WHERE id(s) = nid
RETURN collect(nid) AS src, collect(id(g)) AS dst, collect(coalesce(r.weight, 1.0)) AS weight
