// name: export/get_playlist_songs
// (Playlist)-[:CONTAINS {pos}]->(Song) for playlists given by internal id (pos -1 if unset).
// params: $nids
UNWIND $nids AS nid
MATCH (p:Playlist)-[c:CONTAINS]->(s:Song)
WHERE id(p) = nid
RETURN collect(nid) AS src, collect(id(s)) AS dst, collect(coalesce(c.pos, -1)) AS pos
