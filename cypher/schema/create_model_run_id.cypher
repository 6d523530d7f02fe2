// name: schema/create_model_run_id
// Model runs whose recommendations were written back.
// params:
CREATE CONSTRAINT model_run_id IF NOT EXISTS FOR (n:ModelRun) REQUIRE n.id IS UNIQUE
