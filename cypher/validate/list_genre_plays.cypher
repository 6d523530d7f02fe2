// name: validate/list_genre_plays
// Plays per genre, most played first; a play is shared among its song's genres by weight.
// params:
MATCH (g:Genre)
CALL (g) {
  MATCH (g)<-[r:IN_GENRE]-(s:Song)
  CALL (s) {
    MATCH (s)<-[l:LISTENED]-(:User)
    RETURN sum(l.plays) AS song_plays
  }
  CALL (s) {
    MATCH (s)-[m:IN_GENRE]->(:Genre)
    RETURN sum(coalesce(m.weight, 1.0)) AS total_weight
  }
  RETURN sum(CASE WHEN total_weight > 0
                  THEN song_plays * coalesce(r.weight, 1.0) / total_weight
                  ELSE 0.0 END) AS plays
}
WITH g, plays
ORDER BY plays DESC, g.id
RETURN collect({id: g.id, name: coalesce(g.name, g.id), plays: plays}) AS genres
