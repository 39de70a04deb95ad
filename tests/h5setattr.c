// Test fixture tool: sets an integer attribute of an HDF5 file's root group, e.g. to turn
// one shard of a 2-shard dataset into the only shard of a 1-shard dataset; or removes an
// object, e.g. a model's item ids to make the model of an older grurec. A sealed file is
// sealed again (io/h5seal.h): the change is then the writer's own.
// usage: h5setattr FILE NAME VALUE | h5setattr FILE --unlink PATH
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5seal.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: h5setattr FILE NAME VALUE | h5setattr FILE --unlink PATH\n");
        return 2;
    }
    int sealed;
    if (h5seal_check(argv[1], &sealed)) return 1;
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return 1;
    int rc;
    if (strcmp(argv[2], "--unlink") == 0) {
        rc = H5Ldelete(f, argv[3], H5P_DEFAULT) < 0;
    } else {
        long long v = atoll(argv[3]);
        if (H5Aexists(f, argv[2]) > 0) H5Adelete(f, argv[2]);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, argv[2], H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        rc = a < 0 || H5Awrite(a, H5T_NATIVE_LLONG, &v) < 0;
        H5Aclose(a);
        H5Sclose(sp);
    }
    if (H5Fclose(f) < 0 || rc) return 1;
    return sealed && h5seal_write(argv[1]) != 0;
}
