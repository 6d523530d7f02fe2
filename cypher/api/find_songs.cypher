// name: api/find_songs
// Names and artists of the songs among $song_ids that exist (input order is not kept).
// params: $song_ids
UNWIND $song_ids AS id
MATCH (s:Song {id: id})
OPTIONAL MATCH (s)-[:BY]->(a:Artist)
RETURN s.id AS song_id, s.name AS name, a.name AS artist
