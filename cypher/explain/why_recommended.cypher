// name: explain/why_recommended
// Why was song $song_id recommended to user $user_id: the weighted evidence, strongest first, with what each piece states.
// params: $user_id, $song_id
MATCH (u:User {id: $user_id})-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song {id: $song_id})
OPTIONAL MATCH (r)-[b:BECAUSE]->(e)
WITH u, r, s, b, e ORDER BY b.rank
RETURN u.id AS user_id, s.id AS song_id, s.name AS song, r.rank AS rank, r.score AS score,
       r.run_id AS run_id, r.model AS model, r.reason AS reason,
       [x IN collect(CASE WHEN b IS NULL THEN NULL ELSE {kind: b.kind, weight: b.weight,
          label: labels(e)[0], id: e.id, name: coalesce(e.name, e.id),
          named: coalesce(b.named, false), share_of_plays: b.share_of_plays,
          songs_in_common: b.songs_in_common} END) WHERE x IS NOT NULL] AS evidence
