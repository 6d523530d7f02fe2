// name: schema/drop_artist_name_index
// Remove the range index on artist names that graphs loaded before 2026-12-03 have.
// params:
// It refuses a name over about 8 kB, so one such name stopped a whole load;
// artist_name_prefix replaces it.
DROP INDEX artist_name IF EXISTS
