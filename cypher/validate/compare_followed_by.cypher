// name: validate/compare_followed_by
// FOLLOWED_BY counts out of up to $limit songs against a recount of consecutive plays in sessions.
// params: $limit, $examples
MATCH (a:Song)
WHERE EXISTS { (a)<-[:PLAYED]-(:Session) } OR EXISTS { (a)-[:FOLLOWED_BY]->() }
WITH a
ORDER BY a.id
LIMIT $limit
CALL (a) {
  MATCH (a)<-[p:PLAYED]-(:Session)-[q:PLAYED]->(b:Song)
  WHERE q.pos = p.pos + 1
  WITH b.id AS next, count(*) AS n
  ORDER BY next
  RETURN collect([next, n]) AS played, sum(n) AS pairs
}
CALL (a) {
  MATCH (a)-[f:FOLLOWED_BY]->(b:Song)
  WITH b.id AS next, f.count AS n
  ORDER BY next
  RETURN collect([next, n]) AS counted
}
WITH a, pairs, played, counted,
     CASE WHEN played = counted THEN []
          ELSE [x IN played WHERE NOT x IN counted] + [x IN counted WHERE NOT x IN played]
     END AS diff
WITH a, pairs, played, counted,
     reduce(ids = [], x IN diff | CASE WHEN x[0] IN ids THEN ids ELSE ids + x[0] END) AS bad
RETURN count(a) AS songs, sum(pairs) AS pairs, sum(size(bad)) AS bad,
       reduce(acc = [], x IN collect([id IN bad[0..$examples] | {
         a: a.id, b: id,
         followed_by: [y IN counted WHERE y[0] = id | y[1]][0],
         pairs: coalesce([y IN played WHERE y[0] = id | y[1]][0], 0)
       }]) | acc + x)[0..$examples] AS examples
