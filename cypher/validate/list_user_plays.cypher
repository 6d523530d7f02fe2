// name: validate/list_user_plays
// Plays per user (LISTENED.plays summed), one number per user, users without plays as 0.
// params:
MATCH (u:User)
CALL (u) {
  MATCH (u)-[l:LISTENED]->(:Song)
  RETURN sum(l.plays) AS plays
}
RETURN collect(plays) AS plays
