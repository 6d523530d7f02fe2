// name: writeback/list_recommended_users
// The users holding recommendations of run $run_id (null: of any run), for the truth audit.
// params: $run_id
MATCH (u:User)-[:RECEIVED]->(r:Recommendation)
WHERE $run_id IS NULL OR r.run_id = $run_id
RETURN DISTINCT u.id AS user_id
ORDER BY user_id
