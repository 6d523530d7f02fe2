// name: api/list_warm_users
// Up to $limit users holding precomputed recommendations of run $run_id (one row each: their rank-1 row), whose cache entries the API fills when it starts.
// params: $run_id, $limit
MATCH (u:User)-[:RECEIVED]->(r:Recommendation {rank: 1})
WHERE r.run_id = $run_id
RETURN u.id AS user_id
LIMIT $limit
