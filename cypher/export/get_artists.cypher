// name: export/get_artists
// Graph id, name and popularity ($missing when unknown) of artists given by internal id.
// params: $nids, $missing
UNWIND $nids AS nid
MATCH (a:Artist)
WHERE id(a) = nid AND a.id IS NOT NULL
RETURN collect(nid) AS nids, collect(a.id) AS ids, collect(coalesce(a.name, '')) AS names,
       collect(coalesce(a.popularity, $missing)) AS popularity
