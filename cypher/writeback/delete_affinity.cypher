// name: writeback/delete_affinity
// Remove AFFINITY edges of earlier runs from these users.
// params: $user_ids
UNWIND $user_ids AS uid
MATCH (:User {id: uid})-[x:AFFINITY]->(:Genre)
DELETE x
