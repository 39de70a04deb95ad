// Thin helpers over the HDF5 C API for the 1-D datasets and attributes grurec
// stores. Failures are reported through check.h: a file that cannot be read or
// lacks an expected object is an input error naming the file and the object.
#ifndef GRUREC_H5UTIL_H
#define GRUREC_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#define H5_CHECK(expr, ...) CHECK((expr) >= 0, __VA_ARGS__)

// Silences HDF5's own error stack printing: grurec reports errors itself.
void h5_quiet(void);

hid_t h5_create(const char *path);           // truncates
hid_t h5_open_read(const char *path);        // input error if missing or not HDF5
void h5_close(hid_t file, const char *path); // checks the close (the data hit the disk)

void h5_attr_i64(hid_t obj, const char *name, int64_t v);
void h5_attr_str(hid_t obj, const char *name, const char *v);
// Reads an attribute; a missing one or one of another type is an input error.
int64_t h5_get_attr_i64(hid_t obj, const char *name, const char *path);
char *h5_get_attr_str(hid_t obj, const char *name, const char *path);  // caller frees
int h5_has_attr(hid_t obj, const char *name);

// A 1-D dataset of N elements, chunked (min(N, chunk)) with shuffle + deflate LEVEL
// (0 = uncompressed). Returns the dataset handle.
hid_t h5_create_1d(hid_t file, const char *name, hid_t type, int64_t n, int64_t chunk, int level);
hid_t h5_vlen_string_type(void);  // caller closes
// Writes / reads COUNT elements at OFFSET of a 1-D dataset.
void h5_write_at(hid_t dset, hid_t memtype, int64_t offset, int64_t count, const void *buf);
void h5_read_at(hid_t dset, hid_t memtype, int64_t offset, int64_t count, void *buf);
// Opens NAME in FILE, checking that it is 1-D; *n = its length.
hid_t h5_open_1d(hid_t file, const char *name, const char *path, int64_t *n);


// Streams a 1-D integer dataset made by h5_create_1d chunk by chunk: each full
// chunk is shuffled and deflated here (libdeflate, several times faster than the
// zlib inside HDF5's filter) and stored with H5Dwrite_chunk. The bytes on disk are
// exactly what HDF5's shuffle + deflate filters produce, so any HDF5 reader reads them.
typedef struct {
    hid_t dset;
    size_t elem;            // bytes per element
    int64_t chunk;          // elements per chunk
    int level;              // deflate level, 0 = raw chunks
    unsigned char *buf, *shuffled, *packed;
    size_t packed_cap;
    int64_t fill, next_chunk, total;
    struct libdeflate_compressor *z;
} chunk_writer;

// LEVEL must be the level the dataset was created with (0 = no filters).
void cw_open(chunk_writer *w, hid_t dset, size_t elem, int level);
void cw_append(chunk_writer *w, const void *src, int64_t n);
// Writes the last, partial chunk and frees the buffers (the dataset stays open).
void cw_close(chunk_writer *w);

#endif
