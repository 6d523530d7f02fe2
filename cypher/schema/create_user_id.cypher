// name: schema/create_user_id
// Users are keyed by their source id.
// params:
CREATE CONSTRAINT user_id IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE
