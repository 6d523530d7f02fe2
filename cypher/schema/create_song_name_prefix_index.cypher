// name: schema/create_song_name_prefix_index
// Look songs up by name: the index is on `name_prefix` (the name's first 256 characters).
// params:
// A range index on `name` itself would refuse names over about 8 kB; names are stored whole.
// Exact lookup: WHERE n.name_prefix = left($name, 256) AND n.name = $name.
CREATE INDEX song_name_prefix IF NOT EXISTS FOR (n:Song) ON (n.name_prefix)
