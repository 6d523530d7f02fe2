// name: ingest/lock_nodes
// Take the write locks of nodes a plays transaction writes to, in the order given, changing nothing.
// params: $nids
// $nids are internal ids in ascending order; SET then REMOVE of a property the nodes never keep
// takes each node's write lock (a REMOVE alone does not). Two transactions that lock what they
// share in one order wait for each other instead of deadlocking. The loader does this only
// after a deadlock retried one of its transactions (a server with the default
// db.relationship_grouping_threshold; see ingest/_loader.py).
UNWIND $nids AS nid
MATCH (n) WHERE id(n) = nid
SET n.ingest_lock = true
REMOVE n.ingest_lock
