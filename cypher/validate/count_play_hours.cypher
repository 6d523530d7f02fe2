// name: validate/count_play_hours
// Plays per hour of day (UTC), from the PLAYED timestamps.
// params:
MATCH (:Session)-[p:PLAYED]->(:Song)
WHERE p.at IS NOT NULL
WITH (p.at / 3600000) % 24 AS hour, count(*) AS plays
ORDER BY hour
RETURN collect({hour: hour, plays: plays}) AS hours
