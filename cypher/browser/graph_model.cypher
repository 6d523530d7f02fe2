// name: browser/graph_model
// The graph model: every label and relationship type, drawn from the data.
// params:
CALL db.schema.visualization()
