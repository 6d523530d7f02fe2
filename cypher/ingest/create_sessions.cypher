// name: ingest/create_sessions
// Create new sessions with their ordered plays: (User)-[:HAD]->(Session)-[:PLAYED]->(Song).
// params: $rows
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
CREATE (se:Session {id: row.id, start: row.start, end: row.end, plays: size(row.songs)})
CREATE (u)-[:HAD]->(se)
WITH se, row
UNWIND range(0, size(row.songs) - 1) AS i
MATCH (s:Song {id: row.songs[i]})
CREATE (se)-[:PLAYED {pos: row.pos[i], at: row.at[i], ms_played: row.ms[i], skipped: row.skipped[i]}]->(s)
