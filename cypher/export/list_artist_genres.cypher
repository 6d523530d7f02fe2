// name: export/list_artist_genres
// Every (Artist)-[:IN_GENRE {weight}]->(Genre) as internal ids (missing weight: 1.0).
// params:
MATCH (a:Artist)-[r:IN_GENRE]->(g:Genre)
RETURN collect(id(a)) AS src, collect(id(g)) AS dst, collect(coalesce(r.weight, 1.0)) AS weight
