// name: validate/count_users_without_plays
// How many users have no LISTENED relationship at all, with a few of their ids.
// params: $examples
MATCH (u:User)
WITH count(u) AS users,
     collect(CASE WHEN NOT EXISTS { (u)-[:LISTENED]->() } THEN u.id END) AS bad
RETURN users, size(bad) AS bad, bad[0..$examples] AS examples
