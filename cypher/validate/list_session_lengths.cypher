// name: validate/list_session_lengths
// Plays per session and minutes from its first play to the end of its last.
// params:
MATCH (se:Session)
RETURN collect(se.plays) AS plays,
       collect(CASE WHEN se.end >= se.start THEN (se.end - se.start) / 60000.0 END) AS minutes
