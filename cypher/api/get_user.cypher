// name: api/get_user
// Does user $user_id exist, and how many distinct songs has the user listened to.
// params: $user_id
OPTIONAL MATCH (u:User {id: $user_id})
RETURN u IS NOT NULL AS found, CASE WHEN u IS NULL THEN 0 ELSE COUNT { (u)-[:LISTENED]->(:Song) } END AS songs
