// The original item ids inside a model or checkpoint file, so that a model stands on its
// own (recommend without the dataset, warm start and evaluation matched by id). The layout
// is a string table's (io/string_table.h: items/id_bytes and items/id_offsets, sizes
// known before reading, checksummed), so datasets and models share one reader.
#ifndef GRUREC_ID_TABLE_H
#define GRUREC_ID_TABLE_H

#include <hdf5.h>
#include <stdint.h>

// Writes the N ids into F's group "items" (created here). 0 on success, -1 on a failed
// write (errno as HDF5 left it: the caller names its file, as for every tensor).
int id_table_write(hid_t f, char *const *ids, int64_t n);
// 1 when F holds item ids (files before this format do not).
int id_table_present(hid_t f);
// Reads F's N ids (PATH names the file in messages). A table that is damaged, of another
// length or not well formed is an input error naming the file. One allocation: free().
char **id_table_read(hid_t f, const char *path, int64_t n);
// Items matched by original id: from_of[j] = the index in FROM of TO's item j, or -1.
// Returns how many of TO's items FROM has. (Sorting, O(n log n); ids are unique.)
int64_t id_match(char *const *from, int64_t n_from, char *const *to, int64_t n_to, int64_t *from_of);

#endif
