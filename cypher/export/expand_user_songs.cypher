// name: export/expand_user_songs
// Songs the given users played before $until (null: ever), via LISTENED.first_at; each once.
// params: $nids, $until
UNWIND $nids AS nid
MATCH (u)-[l:LISTENED]->(s:Song)
WHERE id(u) = nid AND ($until IS NULL OR l.first_at < $until)
RETURN collect(DISTINCT id(s)) AS nids
