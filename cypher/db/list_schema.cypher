// name: db/list_schema
// Constraints and indexes with their state, for db init and tests.
// params:
SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, state, owningConstraint
RETURN name, type, entityType, labelsOrTypes, properties, state, owningConstraint ORDER BY name
