// name: export/get_song_artists
// (Song)-[:BY]->(Artist) for songs given by internal id, as two parallel lists of internal ids.
// params: $nids
UNWIND $nids AS nid
MATCH (s:Song)-[:BY]->(a:Artist)
WHERE id(s) = nid
RETURN collect(nid) AS src, collect(id(a)) AS dst
