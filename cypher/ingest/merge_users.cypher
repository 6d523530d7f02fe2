// name: ingest/merge_users
// Create or update users from the normalised users table.
// params: $rows
UNWIND $rows AS row
MERGE (u:User {id: row.id})
SET u += row.props
