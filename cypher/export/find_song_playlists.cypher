// name: export/find_song_playlists
// Playlists containing any of the given songs, modified before $until (null: no cut-off), with names.
// params: $nids, $until
UNWIND $nids AS nid
MATCH (s)<-[:CONTAINS]-(p:Playlist)
WHERE id(s) = nid AND p.id IS NOT NULL AND ($until IS NULL OR p.modified_at < $until)
WITH DISTINCT p
RETURN collect(id(p)) AS nids, collect(p.id) AS ids, collect(coalesce(p.name, '')) AS names
