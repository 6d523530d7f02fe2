// name: db/wipe_nodes
// Delete every node in batches (after db/wipe_relationships).
// params:
MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 20000 ROWS
