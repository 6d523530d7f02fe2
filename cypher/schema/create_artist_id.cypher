// name: schema/create_artist_id
// Artists are keyed by their stable id; every MERGE on Artist uses this constraint.
// params:
CREATE CONSTRAINT artist_id IF NOT EXISTS FOR (n:Artist) REQUIRE n.id IS UNIQUE
