// name: validate/list_song_plays
// Plays per played song (LISTENED.plays summed over users), one number per song.
// params:
MATCH (s:Song)<-[l:LISTENED]-(:User)
WITH s, sum(l.plays) AS plays
RETURN collect(plays) AS plays
