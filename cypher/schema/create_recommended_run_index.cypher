// name: schema/create_recommended_run_index
// Write-back replaces and queries recommendations by run.
// params:
CREATE INDEX recommendation_run IF NOT EXISTS FOR (n:Recommendation) ON (n.run_id)
