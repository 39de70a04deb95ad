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

#endif
