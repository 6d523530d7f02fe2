// name: ingest/create_listened
// LISTENED for users that had none before this transaction: plain CREATE (rows are distinct pairs).
// params: $rows
UNWIND $rows AS row
MATCH (u:User {id: row.user_id}), (s:Song {id: row.song_id})
CREATE (u)-[:LISTENED {plays: row.plays, ms_played: row.ms_played, skips: row.skips,
                       first_at: row.first_at, last_at: row.last_at}]->(s)
