// name: schema/create_song_name_index
// Look songs up by name (API search, Browser guide).
// params:
CREATE INDEX song_name IF NOT EXISTS FOR (n:Song) ON (n.name)
