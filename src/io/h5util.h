// Thin helpers over the HDF5 C API for the 1-D datasets and attributes grurec
// stores. Every failure names the file and the object ("FILE: DATASET: cannot read 30000
// elements at 0 (...)"): one that reads is an input error (exit 2), one that writes a
// system error (exit 1, through check.h's fail_exit). Files are sealed (io/h5seal.h).
#ifndef GRUREC_H5UTIL_H
#define GRUREC_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#include "util/check.h"

#define H5_CHECK(expr, ...) CHECK((expr) >= 0, __VA_ARGS__)

// Ends the process for a failed write of OBJ (any object of the file): "PROG: FILE:
// OBJECT: WHAT (errno's text, else 'disk full or I/O error?')", exit 1. Callers set errno = 0
// before the HDF5 call.
GRUREC_NORETURN void h5_write_fail(hid_t obj, const char *what, ...) __attribute__((format(printf, 2, 3)));

// Silences HDF5's own error stack printing: grurec reports errors itself.
void h5_quiet(void);

hid_t h5_create(const char *path);           // truncates; with the seal's user block
// The same for writers that report their own failures: -1 on failure, errno as it was left.
hid_t h5_create_file(const char *path);
// Flushes, closes and seals FILE (PATH): its failure (a full disk) is exit 1 naming PATH.
void h5_close(hid_t file, const char *path);
// Opens PATH for reading once its seal verifies (io/h5seal.h); damage, a missing file or
// one that is not HDF5 is an input error naming PATH. An unsealed file (an earlier grurec's)
// opens as before.
hid_t h5_open_read(const char *path);
// The same, but an unsealed file is refused: "PATH: UNSEALED" (exit 2).
hid_t h5_open_sealed(const char *path, const char *unsealed);
// Whether PATH verifies (or, unsealed, opens): for choosing among files without failing.
int h5_readable(const char *path);

void h5_attr_i64(hid_t obj, const char *name, int64_t v);
void h5_attr_str(hid_t obj, const char *name, const char *v);  // a fixed-size string
// Reads an attribute; a missing one or one of another type is an input error. Strings
// may be of fixed size or (files of earlier versions) variable length.
int64_t h5_get_attr_i64(hid_t obj, const char *name, const char *path);
char *h5_get_attr_str(hid_t obj, const char *name, const char *path);  // caller frees
int h5_has_attr(hid_t obj, const char *name);

// A 1-D dataset of N elements, chunked (min(N, chunk)) with shuffle + deflate LEVEL
// (0 = uncompressed). Returns the dataset handle.
hid_t h5_create_1d(hid_t file, const char *name, hid_t type, int64_t n, int64_t chunk, int level);
// Writes / reads COUNT elements at OFFSET of a 1-D dataset.
void h5_write_at(hid_t dset, hid_t memtype, int64_t offset, int64_t count, const void *buf);
void h5_read_at(hid_t dset, hid_t memtype, int64_t offset, int64_t count, void *buf);
// Opens NAME in FILE, checking that it is 1-D; *n = its length.
hid_t h5_open_1d(hid_t file, const char *name, const char *path, int64_t *n);
// Reads all of integer dataset NAME, which must hold N elements of ELEM bytes (MEMTYPE),
// in blocks of CHUNK elements, and verifies it against its 'checksum' attribute (the chunk
// writer's): another length, a missing checksum or a mismatch is an input error naming
// PATH and NAME. OUT holds N elements.
void h5_read_checked(hid_t file, const char *name, const char *path, hid_t memtype, size_t elem, int64_t n,
                     int64_t chunk, void *out);


// Streams a 1-D integer dataset made by h5_create_1d chunk by chunk: each full
// chunk is shuffled and deflated here (libdeflate, several times faster than the
// zlib inside HDF5's filter) and stored with H5Dwrite_chunk. The bytes on disk are
// exactly what HDF5's shuffle + deflate filters produce, so any HDF5 reader reads them.
// The values' checksum (tensor_io's, over their 32-bit words: the dataset's bytes must be
// whole words) is taken on the way and stored as the dataset's 'checksum' attribute.
typedef struct {
    hid_t dset;
    size_t elem;            // bytes per element
    int64_t chunk;          // elements per chunk
    int level;              // deflate level, 0 = raw chunks
    unsigned char *buf, *shuffled, *packed;
    size_t packed_cap;
    int64_t fill, next_chunk, total;
    uint64_t sum;
    struct libdeflate_compressor *z;
} chunk_writer;

// LEVEL must be the level the dataset was created with (0 = no filters).
void cw_open(chunk_writer *w, hid_t dset, size_t elem, int level);
void cw_append(chunk_writer *w, const void *src, int64_t n);
// Writes the last, partial chunk and the checksum, and frees the buffers (the dataset
// stays open).
void cw_close(chunk_writer *w);

#endif
