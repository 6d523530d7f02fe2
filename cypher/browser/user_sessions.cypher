// name: browser/user_sessions
// The last three listening sessions of user $user_id, with their plays in order.
// params: $user_id
MATCH (u:User {id: $user_id})-[h:HAD]->(se:Session)
WITH u, h, se ORDER BY se.start DESC LIMIT 3
MATCH (se)-[p:PLAYED]->(s:Song)
RETURN u, h, se, p, s
