// name: schema/create_session_id
// Sessions are keyed by their stable id; every MERGE on Session uses this constraint.
// params:
CREATE CONSTRAINT session_id IF NOT EXISTS FOR (n:Session) REQUIRE n.id IS UNIQUE
