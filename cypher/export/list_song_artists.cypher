// name: export/list_song_artists
// Every (Song)-[:BY]->(Artist), as two parallel lists of internal ids.
// params:
MATCH (s:Song)-[:BY]->(a:Artist)
RETURN collect(id(s)) AS src, collect(id(a)) AS dst
