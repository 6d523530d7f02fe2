// name: export/list_artists
// Every artist's internal id, graph id, name and popularity ($missing when unknown).
// params: $missing
MATCH (a:Artist)
WHERE a.id IS NOT NULL
RETURN collect(id(a)) AS nids, collect(a.id) AS ids, collect(coalesce(a.name, '')) AS names,
       collect(coalesce(a.popularity, $missing)) AS popularity
