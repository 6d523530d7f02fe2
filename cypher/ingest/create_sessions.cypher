// name: ingest/create_sessions
// Create new sessions with their ordered plays: (User)-[:HAD]->(Session)-[:PLAYED]->(Song).
// params: $id, $user, $start, $end, $songs, $pos, $at, $ms, $skipped
// One entry per session in each list parameter (columns; $songs, $pos, $at, $ms and $skipped
// hold one list per session, in play order). Users and songs are internal ids resolved by
// ingest/find_node_ids in the same load.
UNWIND range(0, size($id) - 1) AS k
MATCH (u:User) WHERE id(u) = $user[k]
CREATE (se:Session {id: $id[k], start: $start[k], end: $end[k], plays: size($songs[k])})
CREATE (u)-[:HAD]->(se)
WITH se, $songs[k] AS songs, $pos[k] AS pos, $at[k] AS at, $ms[k] AS ms, $skipped[k] AS skipped
UNWIND range(0, size(songs) - 1) AS i
MATCH (s:Song) WHERE id(s) = songs[i]
CREATE (se)-[:PLAYED {pos: pos[i], at: at[i], ms_played: ms[i], skipped: skipped[i]}]->(s)
