// name: export/list_users
// Every user's internal id and graph id, for the export's dense user index (sorted by id).
// params:
MATCH (u:User)
WHERE u.id IS NOT NULL
RETURN collect(id(u)) AS nids, collect(u.id) AS ids
