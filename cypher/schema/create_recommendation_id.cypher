// name: schema/create_recommendation_id
// Reified recommendations (one per user, song and run) are keyed by id.
// params:
CREATE CONSTRAINT recommendation_id IF NOT EXISTS FOR (n:Recommendation) REQUIRE n.id IS UNIQUE
