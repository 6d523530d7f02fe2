// name: schema/create_song_id
// Songs are keyed by their stable id; every MERGE on Song uses this constraint.
// params:
CREATE CONSTRAINT song_id IF NOT EXISTS FOR (n:Song) REQUIRE n.id IS UNIQUE
