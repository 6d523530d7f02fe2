// name: validate/count_orphan_sessions
// Sessions that do not belong to exactly one user through HAD.
// params: $examples
MATCH (se:Session)
WITH se, COUNT { (:User)-[:HAD]->(se) } AS owners
RETURN count(se) AS sessions,
       count(CASE WHEN owners <> 1 THEN 1 END) AS bad,
       collect(CASE WHEN owners <> 1 THEN {session: se.id, owners: owners} END
       )[0..$examples] AS examples
