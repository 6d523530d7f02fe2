// name: export/expand_song_users
// Users who played the given songs before $until (null: ever), via LISTENED.first_at; each once.
// params: $nids, $until
UNWIND $nids AS nid
MATCH (s)<-[l:LISTENED]-(u:User)
WHERE id(s) = nid AND ($until IS NULL OR l.first_at < $until)
RETURN collect(DISTINCT id(u)) AS nids
