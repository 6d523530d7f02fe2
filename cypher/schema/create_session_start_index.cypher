// name: schema/create_session_start_index
// Time-window exports and per-user session ordering read sessions by start time.
// params:
CREATE INDEX session_start IF NOT EXISTS FOR (n:Session) ON (n.start)
