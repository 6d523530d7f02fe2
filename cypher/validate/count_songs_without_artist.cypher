// name: validate/count_songs_without_artist
// How many songs have no BY relationship to an artist, with a few of their ids.
// params: $examples
MATCH (s:Song)
WITH count(s) AS songs,
     collect(CASE WHEN NOT EXISTS { (s)-[:BY]->(:Artist) } THEN s.id END) AS bad
RETURN songs, size(bad) AS bad, bad[0..$examples] AS examples
