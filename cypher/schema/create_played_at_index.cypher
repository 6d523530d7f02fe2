// name: schema/create_played_at_index
// Time-window exports filter plays by timestamp.
// params:
CREATE INDEX played_at IF NOT EXISTS FOR ()-[r:PLAYED]-() ON (r.at)
