// name: export/list_playlists
// Playlists last modified before $until (all playlists when $until is null), with names.
// params: $until
MATCH (p:Playlist)
WHERE p.id IS NOT NULL AND ($until IS NULL OR p.modified_at < $until)
RETURN collect(id(p)) AS nids, collect(p.id) AS ids, collect(coalesce(p.name, '')) AS names
