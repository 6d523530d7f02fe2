// name: schema/create_playlist_id
// Playlists are keyed by their stable id; every MERGE on Playlist uses this constraint.
// params:
CREATE CONSTRAINT playlist_id IF NOT EXISTS FOR (n:Playlist) REQUIRE n.id IS UNIQUE
