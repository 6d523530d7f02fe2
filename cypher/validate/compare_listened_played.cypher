// name: validate/compare_listened_played
// Every user's LISTENED plays and skips against a recount of the PLAYED relationships of their sessions.
// params: $examples
MATCH (u:User)
CALL (u) {
  MATCH (u)-[:HAD]->(:Session)-[p:PLAYED]->(s:Song)
  WITH s.id AS song, count(p) AS n, sum(CASE WHEN p.skipped THEN 1 ELSE 0 END) AS skips
  ORDER BY song
  RETURN collect([song, n, skips]) AS played
}
CALL (u) {
  MATCH (u)-[l:LISTENED]->(s:Song)
  WITH s.id AS song, l.plays AS n, coalesce(l.skips, 0) AS skips
  ORDER BY song
  RETURN collect([song, n, skips]) AS listened
}
WITH u, played, listened, size(played) AS pairs
WITH u, pairs, played, listened,
     CASE WHEN played = listened THEN []
          ELSE [x IN played WHERE NOT x IN listened] + [x IN listened WHERE NOT x IN played]
     END AS diff
WITH u, pairs, played, listened,
     reduce(ids = [], x IN diff | CASE WHEN x[0] IN ids THEN ids ELSE ids + x[0] END) AS bad
RETURN sum(pairs) AS pairs, sum(size(bad)) AS bad,
       reduce(acc = [], x IN collect([id IN bad[0..$examples] | {
         user: u.id, song: id,
         listened: [y IN listened WHERE y[0] = id | y[1]][0],
         played: coalesce([y IN played WHERE y[0] = id | y[1]][0], 0)
       }]) | acc + x)[0..$examples] AS examples
