// name: ingest/add_listened
// Add a batch's play aggregates to (User)-[:LISTENED]->(Song); runs in the sessions' transaction.
// Rows come as parallel lists (columns).
// params: $user, $song, $plays, $ms_played, $skips, $first_at, $last_at
UNWIND range(0, size($user) - 1) AS i
MATCH (u:User) WHERE id(u) = $user[i]
MATCH (s:Song) WHERE id(s) = $song[i]
WITH u, s, $plays[i] AS plays, $ms_played[i] AS ms_played, $skips[i] AS skips,
     $first_at[i] AS first_at, $last_at[i] AS last_at
MERGE (u)-[l:LISTENED]->(s)
ON CREATE SET l.plays = plays, l.ms_played = ms_played, l.skips = skips,
              l.first_at = first_at, l.last_at = last_at
ON MATCH SET l.plays = l.plays + plays,
             l.ms_played = CASE WHEN ms_played IS NULL THEN l.ms_played
                                ELSE coalesce(l.ms_played, 0) + ms_played END,
             l.skips = l.skips + skips,
             l.first_at = CASE WHEN first_at < l.first_at THEN first_at ELSE l.first_at END,
             l.last_at = CASE WHEN last_at > l.last_at THEN last_at ELSE l.last_at END
