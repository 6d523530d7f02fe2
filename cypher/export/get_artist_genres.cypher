// name: export/get_artist_genres
// (Artist)-[:IN_GENRE {weight}]->(Genre) for artists given by internal id (missing weight: 1.0).
// params: $nids
UNWIND $nids AS nid
MATCH (a:Artist)-[r:IN_GENRE]->(g:Genre)
WHERE id(a) = nid
RETURN collect(nid) AS src, collect(id(g)) AS dst, collect(coalesce(r.weight, 1.0)) AS weight
