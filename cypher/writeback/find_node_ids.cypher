// name: writeback/find_node_ids
// Internal ids of the nodes one batch of recommendations points at, by their stable ids.
// params: $user_ids, $song_ids, $artist_ids, $genre_ids, $playlist_ids
// Run first in the batch's transaction: once it has deleted the old recommendations, every
// index seek first gathers all the nodes it deleted (a cost that grows with the batch).
CALL () {
  UNWIND $user_ids AS key
  MATCH (n:User {id: key})
  RETURN collect([key, id(n)]) AS users
}
CALL () {
  UNWIND $song_ids AS key
  MATCH (n:Song {id: key})
  RETURN collect([key, id(n)]) AS songs
}
CALL () {
  UNWIND $artist_ids AS key
  MATCH (n:Artist {id: key})
  RETURN collect([key, id(n)]) AS artists
}
CALL () {
  UNWIND $genre_ids AS key
  MATCH (n:Genre {id: key})
  RETURN collect([key, id(n)]) AS genres
}
CALL () {
  UNWIND $playlist_ids AS key
  MATCH (n:Playlist {id: key})
  RETURN collect([key, id(n)]) AS playlists
}
RETURN users, songs, artists, genres, playlists
