// name: validate/check_session_positions
// Sessions whose PLAYED positions are not exactly 0..n-1 or disagree with Session.plays.
// params: $examples
MATCH (se:Session)
CALL (se) {
  MATCH (se)-[p:PLAYED]->(:Song)
  RETURN count(p) AS n, min(p.pos) AS lo, max(p.pos) AS hi, count(DISTINCT p.pos) AS distinct
}
WITH se, n, n = 0 OR lo <> 0 OR hi <> n - 1 OR distinct <> n OR se.plays <> n AS wrong
RETURN count(se) AS sessions,
       count(CASE WHEN wrong THEN 1 END) AS bad,
       collect(CASE WHEN wrong THEN {session: se.id, plays: se.plays, played: n} END
       )[0..$examples] AS examples
