// name: db/await_indexes
// Block until every index is online (after schema changes), for up to $seconds.
// params: $seconds
CALL db.awaitIndexes($seconds)
