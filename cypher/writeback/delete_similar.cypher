// name: writeback/delete_similar
// Remove SIMILAR_TO edges of earlier runs from these songs.
// params: $song_ids
UNWIND $song_ids AS sid
MATCH (:Song {id: sid})-[x:SIMILAR_TO]->()
DELETE x
