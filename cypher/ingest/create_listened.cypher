// name: ingest/create_listened
// LISTENED pairs that do not exist yet (the loader knows: see ingest/find_fresh): plain CREATE.
// Rows come as parallel lists (columns), which the server decodes faster than maps.
// params: $user, $song, $plays, $ms_played, $skips, $first_at, $last_at
UNWIND range(0, size($user) - 1) AS i
MATCH (u:User) WHERE id(u) = $user[i]
MATCH (s:Song) WHERE id(s) = $song[i]
CREATE (u)-[:LISTENED {plays: $plays[i], ms_played: $ms_played[i], skips: $skips[i],
                       first_at: $first_at[i], last_at: $last_at[i]}]->(s)
