// name: schema/drop_genre_name_index
// Remove the range index on genre names that graphs loaded before 2026-12-03 have.
// params:
// It refuses a name over about 8 kB, so one such name stopped a whole load;
// genre_name_prefix replaces it.
DROP INDEX genre_name IF EXISTS
