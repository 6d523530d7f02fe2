// name: export/feature_means
// Means of the numeric node properties used as features (nulls ignored; null when none is set).
// params:
CALL () {
  MATCH (s:Song)
  RETURN avg(s.duration_ms) AS duration_ms, avg(s.danceability) AS danceability,
         avg(s.energy) AS energy, avg(s.valence) AS valence, avg(s.tempo) AS tempo,
         avg(s.acousticness) AS acousticness, avg(s.instrumentalness) AS instrumentalness,
         avg(s.speechiness) AS speechiness, avg(s.loudness) AS loudness
}
CALL () {
  MATCH (u:User)
  RETURN avg(u.activity_level) AS activity_level
}
CALL () {
  MATCH (a:Artist)
  RETURN avg(a.popularity) AS artist_popularity
}
CALL () {
  MATCH (g:Genre)
  RETURN avg(g.popularity) AS genre_popularity
}
RETURN {duration_ms: duration_ms, danceability: danceability, energy: energy, valence: valence,
        tempo: tempo, acousticness: acousticness, instrumentalness: instrumentalness,
        speechiness: speechiness, loudness: loudness} AS song,
       {activity_level: activity_level} AS user,
       {popularity: artist_popularity} AS artist,
       {popularity: genre_popularity} AS genre
