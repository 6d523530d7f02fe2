// name: ingest/add_listened
// Add a batch's play aggregates to (User)-[:LISTENED]->(Song); runs in the sessions' transaction.
// params: $rows
UNWIND $rows AS row
MATCH (u:User {id: row.user_id}), (s:Song {id: row.song_id})
MERGE (u)-[l:LISTENED]->(s)
ON CREATE SET l.plays = row.plays, l.ms_played = row.ms_played, l.skips = row.skips,
              l.first_at = row.first_at, l.last_at = row.last_at
ON MATCH SET l.plays = l.plays + row.plays,
             l.ms_played = CASE WHEN row.ms_played IS NULL THEN l.ms_played
                                ELSE coalesce(l.ms_played, 0) + row.ms_played END,
             l.skips = l.skips + row.skips,
             l.first_at = CASE WHEN row.first_at < l.first_at THEN row.first_at ELSE l.first_at END,
             l.last_at = CASE WHEN row.last_at > l.last_at THEN row.last_at ELSE l.last_at END
