// name: schema/create_genre_name_index
// Look genres up by name (genre filters).
// params:
CREATE INDEX genre_name IF NOT EXISTS FOR (n:Genre) ON (n.name)
