// name: browser/user_listening
// The songs user $user_id played most (LISTENED.plays) and their artists.
// params: $user_id
MATCH (u:User {id: $user_id})-[l:LISTENED]->(s:Song)
WITH u, l, s ORDER BY l.plays DESC LIMIT 25
OPTIONAL MATCH (s)-[b:BY]->(a:Artist)
RETURN u, l, s, b, a
