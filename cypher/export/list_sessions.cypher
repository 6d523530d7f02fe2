// name: export/list_sessions
// Every session's internal id and graph id (plays refer to sessions by internal id).
// params:
MATCH (se:Session)
WHERE se.id IS NOT NULL
RETURN collect(id(se)) AS nids, collect(se.id) AS ids
