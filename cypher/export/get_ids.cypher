// name: export/get_ids
// Graph ids of nodes given by internal id (nodes without an id are left out).
// params: $nids
UNWIND $nids AS nid
MATCH (n)
WHERE id(n) = nid AND n.id IS NOT NULL
RETURN collect(nid) AS nids, collect(n.id) AS ids
