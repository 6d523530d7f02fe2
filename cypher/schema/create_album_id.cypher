// name: schema/create_album_id
// Albums are keyed by their stable id; every MERGE on Album uses this constraint.
// params:
CREATE CONSTRAINT album_id IF NOT EXISTS FOR (n:Album) REQUIRE n.id IS UNIQUE
