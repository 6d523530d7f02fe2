// name: export/get_users
// Graph id and activity level ($missing when unknown) of users given by internal id.
// params: $nids, $missing
UNWIND $nids AS nid
MATCH (u:User)
WHERE id(u) = nid AND u.id IS NOT NULL
RETURN collect(nid) AS nids, collect(u.id) AS ids,
       collect(coalesce(u.activity_level, $missing)) AS activity_level
