// name: export/list_song_ids
// Every song's internal id and graph id, without properties (the stores' song index).
// params:
MATCH (s:Song)
WHERE s.id IS NOT NULL
RETURN collect(id(s)) AS nids, collect(s.id) AS ids
