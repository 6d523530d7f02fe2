// name: writeback/merge_model_run
// Provenance of a written-back run: model, metrics, when; marks it active.
// params: $id, $props
MATCH (old:ModelRun {active: true}) WHERE old.id <> $id
SET old.active = false
WITH count(*) AS ignored
MERGE (m:ModelRun {id: $id})
SET m += $props, m.active = true
