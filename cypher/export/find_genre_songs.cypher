// name: export/find_genre_songs
// Internal ids of songs with an IN_GENRE relationship to any of the given genres, each once.
// params: $genres
MATCH (g:Genre)
WHERE g.id IN $genres
MATCH (s:Song)-[:IN_GENRE]->(g)
RETURN collect(DISTINCT id(s)) AS nids
