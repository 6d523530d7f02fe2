// name: schema/create_genre_id
// Genres are keyed by their stable id; every MERGE on Genre uses this constraint.
// params:
CREATE CONSTRAINT genre_id IF NOT EXISTS FOR (n:Genre) REQUIRE n.id IS UNIQUE
