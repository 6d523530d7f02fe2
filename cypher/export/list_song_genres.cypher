// name: export/list_song_genres
// Every (Song)-[:IN_GENRE {weight}]->(Genre) as internal ids (missing weight: 1.0).
// params:
MATCH (s:Song)-[r:IN_GENRE]->(g:Genre)
RETURN collect(id(s)) AS src, collect(id(g)) AS dst, collect(coalesce(r.weight, 1.0)) AS weight
