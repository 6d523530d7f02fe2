// name: export/list_genres
// Every genre's internal id, graph id, name and popularity ($missing when unknown).
// params: $missing
MATCH (g:Genre)
WHERE g.id IS NOT NULL
RETURN collect(id(g)) AS nids, collect(g.id) AS ids, collect(coalesce(g.name, '')) AS names,
       collect(coalesce(g.popularity, $missing)) AS popularity
