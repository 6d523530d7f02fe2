// name: online/record_exposures
// Record lists served during an online experiment: (User)-[:SAW]->(Exposure).
// params: $rows
// One row per served list: user_id, experiment, run_id (the run that made the list), at (epoch
// ms, the time it was served) and songs (its song ids, best first). Unknown users are skipped.
UNWIND $rows AS row
MATCH (u:User {id: row.user_id})
CREATE (u)-[:SAW]->(:Exposure {experiment: row.experiment, run_id: row.run_id, at: row.at,
                               songs: row.songs, k: size(row.songs)})
