// name: writeback/delete_similar
// Remove SIMILAR_TO edges of earlier runs from these songs.
// params: $owners
// $owners: the songs' internal ids (writeback/find_node_ids).
UNWIND $owners AS nid
MATCH (a:Song) WHERE id(a) = nid
MATCH (a)-[x:SIMILAR_TO]->()
DELETE x
