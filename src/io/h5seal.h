// The seal of a grurec HDF5 file: its first 512 bytes are an HDF5 user block (HDF5 skips
// it), where the writer puts, once the file is closed, the length and the checksum
// (tensor_io's) of every byte after it. Readers verify that before HDF5 parses anything:
// neither HDF5's parsers (which check few of their own structures in this file format)
// nor grurec's ever read a damaged byte, and any damage, metadata or values, is refused
// with the file's name.
#ifndef GRUREC_H5SEAL_H
#define GRUREC_H5SEAL_H

#include <hdf5.h>

#define H5SEAL_BLOCK 512  // bytes; HDF5 wants a power of two >= 512

// A file-creation property list with the user block (caller closes).
hid_t h5seal_fcpl(void);
// Seals PATH (closed by HDF5, created with h5seal_fcpl). 0, or the errno of what failed.
int h5seal_write(const char *path);
// Ends a file written for a rename (a checkpoint or its part): closes F, seals PATH and
// syncs it to the disk. ERR: the writer's failure so far (0: none), kept if it is one;
// returns the first errno of what failed, 0 when PATH is whole on the disk.
int h5seal_close_sync(hid_t f, const char *path, int err);
// NULL when PATH is whole (*sealed = 1) or an HDF5 file without a seal, as grurec wrote
// before it sealed its files (*sealed = 0); else what is wrong, one phrase for "PATH:
// PHRASE" ("damaged: ...", "not an HDF5 file ...", "cannot read: ..."; static storage).
const char *h5seal_check(const char *path, int *sealed);

#endif
