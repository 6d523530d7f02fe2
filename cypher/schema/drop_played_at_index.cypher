// name: schema/drop_played_at_index
// Graphs loaded before 2026-11-26 have a range index on PLAYED.at that no query uses (time
// windows are read by traversal from users), while every load paid for keeping it current.
// params:
DROP INDEX played_at IF EXISTS
