// name: schema/drop_song_name_index
// Remove the range index on song names that graphs loaded before 2026-12-03 have.
// params:
// It refuses a name over about 8 kB, so one such name stopped a whole load;
// song_name_prefix replaces it.
DROP INDEX song_name IF EXISTS
