// name: db/wipe_graph
// Delete every node and relationship in batches (tests and `neo4j reset` of a remote database).
// params:
MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
