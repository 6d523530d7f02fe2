// name: explain/check_recommendations
// Check user $user_id's written-back evidence against the graph: each BECAUSE piece, the fact that makes it true, and whether it holds.
// params: $user_id
MATCH (u:User {id: $user_id})-[:RECEIVED]->(r:Recommendation)-[:OF]->(s:Song)
CALL (u) {
  OPTIONAL MATCH (u)-[l:LISTENED]->(:Song)
  RETURN coalesce(sum(l.plays), 0) AS total
}
CALL (u) {
  OPTIONAL MATCH (u)-[l:LISTENED]->(:Song)-[:IN_GENRE]->(g:Genre)
  WITH g, sum(l.plays) AS plays
  WHERE g IS NOT NULL
  RETURN collect({id: g.id, plays: plays}) AS genres
}
OPTIONAL MATCH (r)-[b:BECAUSE]->(e)
WITH u, r, s, total, genres, b, e,
     CASE b.kind
       WHEN 'played' THEN coalesce(head([(u)-[l:LISTENED]->(e) | l.plays]), 0)
       WHEN 'similar_user' THEN COUNT { (u)-[:LISTENED]->(:Song)<-[:LISTENED]-(e) }
       WHEN 'genre_affinity' THEN coalesce(head([g IN genres WHERE g.id = e.id | g.plays]), 0)
     END AS n
WITH u, r, s, b, e, n,
     CASE WHEN b.kind = 'genre_affinity' THEN toFloat(n) / CASE total WHEN 0 THEN 1 ELSE total END END AS share,
     size([g IN genres WHERE g.plays > n]) AS genres_above
WITH u, r, s, b, e,
     CASE b.kind
       WHEN 'played' THEN {plays: n}
       WHEN 'similar_user' THEN {songs_in_common: n, listened_to_song: EXISTS { (e)-[:LISTENED]->(s) }}
       WHEN 'genre_affinity' THEN {plays: n, share_of_plays: share, genres_played_more: genres_above}
       WHEN 'artist' THEN {song_by_artist: EXISTS { (s)-[:BY]->(e) }}
       WHEN 'genre' THEN {song_in_genre: EXISTS { (s)-[:IN_GENRE]->(e) }}
       WHEN 'playlist' THEN {playlist_contains_song: EXISTS { (e)-[:CONTAINS]->(s) }}
     END AS fact,
     CASE b.kind
       WHEN 'played' THEN n > 0
       WHEN 'similar_user' THEN e <> u AND n > 0 AND EXISTS { (e)-[:LISTENED]->(s) }
            AND coalesce(b.songs_in_common, n) = n
       WHEN 'genre_affinity' THEN n > 0 AND (genres_above < 3 OR share >= 0.1)
            AND abs(coalesce(b.share_of_plays, share) - share) < 1e-6
       WHEN 'artist' THEN EXISTS { (s)-[:BY]->(e) }
       WHEN 'genre' THEN EXISTS { (s)-[:IN_GENRE]->(e) }
       WHEN 'playlist' THEN EXISTS { (e)-[:CONTAINS]->(s) }
       ELSE false
     END AS holds
ORDER BY r.rank, b.rank
RETURN r.rank AS rank, s.id AS song_id, s.name AS song, r.run_id AS run_id, r.reason AS reason,
       [x IN collect(CASE WHEN b IS NULL THEN NULL ELSE {rank: b.rank, kind: b.kind, weight: b.weight,
          named: coalesce(b.named, false), label: labels(e)[0], id: e.id,
          name: CASE WHEN e:User THEN e.id ELSE coalesce(e.name, e.id) END,
          stated: coalesce(b.share_of_plays, b.songs_in_common), fact: fact, holds: holds,
          artists: [(e)-[:BY]->(a:Artist) | coalesce(a.name, a.id)]} END) WHERE x IS NOT NULL] AS evidence
ORDER BY rank
