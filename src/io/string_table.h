// A table of strings in an HDF5 file (item ids, session ids), stored so that a reader
// knows every size before it reads a byte: NAME_bytes (uint8: each string and its NUL,
// one after another, then NULs up to a whole 32-bit word) and NAME_offsets (int64
// [N+1]: where each string starts; the last, where the bytes in use end). Both are
// written by h5util's chunk writer (deflated, with tensor_io's checksum); the reader
// verifies both checksums and every offset before it hands out a string. (HDF5's
// variable-length strings live in a heap whose damaged records HDF5 reads past.)
#ifndef GRUREC_STRING_TABLE_H
#define GRUREC_STRING_TABLE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "io/h5util.h"

typedef struct {
    chunk_writer bytes, offsets;
    hid_t d_bytes, d_offsets;
    int64_t n, added, at, size;
} strtab_writer;

// The bytes a table of strings of CHARS characters in all (NULs not counted) takes.
int64_t strtab_size(int64_t n, int64_t chars);
// Begins table NAME of N strings of CHARS characters in all, in chunks of CHUNK elements
// deflated at LEVEL (0: none).
void strtab_begin(strtab_writer *w, hid_t f, const char *name, int64_t n, int64_t chars, int64_t chunk, int level);
void strtab_add(strtab_writer *w, const char *s, size_t len);
// Checks that N strings of CHARS characters came, writes the rest and closes the datasets.
void strtab_end(strtab_writer *w);
// Table NAME of F (PATH, for messages), which must hold N strings: an array of N
// pointers into one allocation, freed with free(). Damage is an input error naming PATH.
char **strtab_read(hid_t f, const char *name, const char *path, int64_t n, int64_t chunk);

#endif
