// name: export/list_songs
// Every song: internal id, graph id, name and content features ($missing fills gaps).
// params: $missing
MATCH (s:Song)
WHERE s.id IS NOT NULL
RETURN collect(id(s)) AS nids,
       collect(s.id) AS ids,
       collect(coalesce(s.name, '')) AS names,
       collect(coalesce(s.duration_ms, $missing)) AS duration_ms,
       collect(coalesce(s.danceability, $missing)) AS danceability,
       collect(coalesce(s.energy, $missing)) AS energy,
       collect(coalesce(s.valence, $missing)) AS valence,
       collect(coalesce(s.tempo, $missing)) AS tempo,
       collect(coalesce(s.acousticness, $missing)) AS acousticness,
       collect(coalesce(s.instrumentalness, $missing)) AS instrumentalness,
       collect(coalesce(s.speechiness, $missing)) AS speechiness,
       collect(coalesce(s.loudness, $missing)) AS loudness
