// name: writeback/delete_affinity
// Remove AFFINITY edges of earlier runs from these users.
// params: $owners
// $owners: the users' internal ids (writeback/find_node_ids).
UNWIND $owners AS nid
MATCH (u:User) WHERE id(u) = nid
MATCH (u)-[x:AFFINITY]->(:Genre)
DELETE x
