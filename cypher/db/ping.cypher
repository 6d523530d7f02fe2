// name: db/ping
// Cheapest round trip: is the database answering queries?
// params:
RETURN 1 AS ok
