// name: export/find_song_playlists
// Playlists containing any of the given songs, last modified before $until (null: no cut-off).
// params: $nids, $until
UNWIND $nids AS nid
MATCH (s)<-[:CONTAINS]-(p:Playlist)
WHERE id(s) = nid AND p.id IS NOT NULL AND ($until IS NULL OR p.modified_at < $until)
WITH DISTINCT p
RETURN collect(id(p)) AS nids, collect(p.id) AS ids
