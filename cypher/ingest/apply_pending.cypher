// name: ingest/apply_pending
// Add the aggregates of a marker's sessions, recounted from their PLAYED, and delete the marker.
// params: $id
// For sessions whose loader stopped between a chunk's two transactions. Runs under the
// IngestLock; a marker already gone (its own loader took it) changes nothing.
// The sums are those the loader computes from its rows: plays, skips, known ms_played (null
// when no play knew it), first and last play; a transition is a pair of plays at consecutive
// positions of one session (as validate/compare_followed_by counts them).
MATCH (p:IngestPending {id: $id})
WITH p, p.sessions AS ids
DELETE p
WITH ids
CALL (ids) {
  UNWIND ids AS sid
  MATCH (u:User)-[:HAD]->(:Session {id: sid})-[pl:PLAYED]->(s:Song)
  WITH u, s, count(pl) AS plays, count(pl.ms_played) AS known, sum(pl.ms_played) AS ms,
       sum(CASE WHEN pl.skipped THEN 1 ELSE 0 END) AS skips,
       min(pl.at) AS first_at, max(pl.at) AS last_at
  WITH u, s, plays, skips, first_at, last_at,
       CASE WHEN known = 0 THEN null ELSE ms END AS ms_played
  MERGE (u)-[l:LISTENED]->(s)
  ON CREATE SET l.plays = plays, l.ms_played = ms_played, l.skips = skips,
                l.first_at = first_at, l.last_at = last_at
  ON MATCH SET l.plays = l.plays + plays,
               l.ms_played = CASE WHEN ms_played IS NULL THEN l.ms_played
                                  ELSE coalesce(l.ms_played, 0) + ms_played END,
               l.skips = l.skips + skips,
               l.first_at = CASE WHEN first_at < l.first_at THEN first_at ELSE l.first_at END,
               l.last_at = CASE WHEN last_at > l.last_at THEN last_at ELSE l.last_at END
  RETURN count(*) AS listened
}
CALL (ids) {
  UNWIND ids AS sid
  MATCH (a:Song)<-[x:PLAYED]-(:Session {id: sid})-[y:PLAYED]->(b:Song)
  WHERE y.pos = x.pos + 1
  WITH a, b, count(*) AS count
  MERGE (a)-[f:FOLLOWED_BY]->(b)
  ON CREATE SET f.count = count
  ON MATCH SET f.count = f.count + count
  RETURN count(*) AS transitions
}
RETURN size(ids) AS sessions, listened, transitions
