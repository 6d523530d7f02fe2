// name: export/list_playlist_songs
// (Playlist)-[:CONTAINS {pos}]->(Song) of playlists modified before $until (null: all); pos -1 if unset.
// params: $until
MATCH (p:Playlist)-[c:CONTAINS]->(s:Song)
WHERE $until IS NULL OR p.modified_at < $until
RETURN collect(id(p)) AS src, collect(id(s)) AS dst, collect(coalesce(c.pos, -1)) AS pos
