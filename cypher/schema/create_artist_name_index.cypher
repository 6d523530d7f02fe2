// name: schema/create_artist_name_index
// Look artists up by name.
// params:
CREATE INDEX artist_name IF NOT EXISTS FOR (n:Artist) ON (n.name)
