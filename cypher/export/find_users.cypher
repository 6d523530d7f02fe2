// name: export/find_users
// Internal ids of the users with the given graph ids (unknown ids are simply absent).
// params: $ids
UNWIND $ids AS key
MATCH (u:User {id: key})
RETURN collect(id(u)) AS nids, collect(u.id) AS ids
