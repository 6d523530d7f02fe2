// name: online/outcomes
// Per user and run of an experiment: distinct songs shown, and how many of them the user played after first being shown them.
// params: $experiment
MATCH (u:User)-[:SAW]->(e:Exposure {experiment: $experiment})
UNWIND e.songs AS sid
WITH u, e.run_id AS run, sid, min(e.at) AS first
WITH u, run, sid,
     EXISTS { MATCH (u)-[:HAD]->(:Session)-[p:PLAYED]->(:Song {id: sid}) WHERE p.at > first } AS played
RETURN u.id AS user, run, count(sid) AS shown, sum(CASE WHEN played THEN 1 ELSE 0 END) AS played
ORDER BY user, run
