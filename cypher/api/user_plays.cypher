// name: api/user_plays
// A user's current listening, for fold-in: every song they played, how often, how often skipped.
// params: $user_id
MATCH (:User {id: $user_id})-[l:LISTENED]->(s:Song)
RETURN s.id AS song_id, l.plays AS plays, coalesce(l.skips, 0) AS skips
