// name: db/wipe_relationships
// Delete every relationship in batches, first, so that node deletes stay small.
// params:
MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 20000 ROWS
