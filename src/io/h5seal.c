#include "io/h5seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/tensor_io.h"
#include "util/check.h"

// The user block's text (NUL-padded): fixed widths, so that it is parsed by position.
#define SEAL_MAGIC "grurec sealed HDF5 v1\n"
#define SEAL_FORMAT SEAL_MAGIC "bytes %020llu\nchecksum %016llx\n"
enum { SEAL_TEXT = sizeof SEAL_MAGIC - 1 + 6 + 20 + 1 + 9 + 16 + 1 };
static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

hid_t h5seal_fcpl(void) {
    hid_t pl = H5Pcreate(H5P_FILE_CREATE);
    if (pl >= 0 && H5Pset_userblock(pl, H5SEAL_BLOCK) < 0) {
        H5Pclose(pl);
        return -1;
    }
    return pl;
}

static int read_fully(int fd, void *buf, size_t n, off_t at) {
    for (size_t got = 0; got < n;) {
        ssize_t k = pread(fd, (char *)buf + got, n - got, at + (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    return 0;
}

// tensor_checksum of the N bytes of FD from FROM on, zero-padded to whole 32-bit words.
static int checksum_range(int fd, off_t from, uint64_t n, uint64_t *sum) {
    enum { BLOCK = 1 << 20 };
    uint32_t *buf = xmalloc(BLOCK);
    uint64_t h = TENSOR_CHECKSUM_INIT;
    int rc = 0;
    for (uint64_t at = 0; at < n && rc == 0; at += BLOCK) {
        size_t take = n - at < BLOCK ? (size_t)(n - at) : BLOCK;
        size_t words = (take + 3) / 4;
        buf[words - 1] = 0;  // the padding of a last partial word
        rc = read_fully(fd, buf, take, from + (off_t)at);
        h = tensor_checksum_more(h, buf, words);
    }
    free(buf);
    *sum = h;
    return rc;
}

int h5seal_write(const char *path) {
    errno = 0;
    int fd = open(path, O_RDWR);
    if (fd < 0) return errno ? errno : EIO;
    struct stat st;
    uint64_t sum = 0;
    int err = fstat(fd, &st) != 0 ? errno : st.st_size < H5SEAL_BLOCK ? EINVAL : 0;
    if (!err && checksum_range(fd, H5SEAL_BLOCK, (uint64_t)st.st_size - H5SEAL_BLOCK, &sum) != 0) err = errno ? errno : EIO;
    if (!err) {
        char block[H5SEAL_BLOCK];
        memset(block, 0, sizeof block);
        snprintf(block, sizeof block, SEAL_FORMAT, (unsigned long long)(st.st_size - H5SEAL_BLOCK),
                 (unsigned long long)sum);
        ssize_t k = pwrite(fd, block, sizeof block, 0);
        if (k != (ssize_t)sizeof block) err = k < 0 ? errno : ENOSPC;
    }
    if (close(fd) != 0 && !err) err = errno;
    return err;
}

// Reads the fixed-width number of DIGITS characters at P in BASE; -1 if one is not a digit.
static int parse_fixed(const char *p, int digits, int base, uint64_t *v) {
    *v = 0;
    for (int i = 0; i < digits; i++) {
        int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * (uint64_t)base + (uint64_t)d;
    }
    return 0;
}

const char *h5seal_check(const char *path, int *sealed) {
    static char why[256];
    *sealed = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot read: %s", strerror(errno));
        return why;
    }
    struct stat st;
    char block[SEAL_TEXT];
    const char *bad = NULL;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof hdf5_signature || read_fully(fd, block, sizeof hdf5_signature, 0) != 0)
        bad = "not an HDF5 file (too short)";
    else if (memcmp(block, hdf5_signature, sizeof hdf5_signature) == 0)
        ;  // an HDF5 file that starts at byte 0: unsealed
    else if (st.st_size < H5SEAL_BLOCK || read_fully(fd, block, sizeof block, 0) != 0 ||
             memcmp(block, SEAL_MAGIC, sizeof SEAL_MAGIC - 1) != 0)
        bad = "not an HDF5 file, nor one grurec sealed (damaged, or not written by grurec)";
    else {
        const char *p = block + sizeof SEAL_MAGIC - 1;
        uint64_t bytes, want, got;
        if (memcmp(p, "bytes ", 6) != 0 || parse_fixed(p + 6, 20, 10, &bytes) != 0 || p[26] != '\n' ||
            memcmp(p + 27, "checksum ", 9) != 0 || parse_fixed(p + 36, 16, 16, &want) != 0 || p[52] != '\n')
            bad = "damaged: its grurec header is unreadable";
        else if (bytes != (uint64_t)st.st_size - H5SEAL_BLOCK) {
            snprintf(why, sizeof why, "damaged: %llu bytes, written as %llu (cut short or extended)",
                     (unsigned long long)st.st_size, (unsigned long long)bytes + H5SEAL_BLOCK);
            bad = why;
        } else if (checksum_range(fd, H5SEAL_BLOCK, bytes, &got) != 0) {
            snprintf(why, sizeof why, "cannot read: %s", strerror(errno ? errno : EIO));
            bad = why;
        } else if (got != want)
            bad = "damaged: its bytes do not match the checksum they were written with";
        else
            *sealed = 1;
    }
    close(fd);
    return bad;
}

int h5seal_close_sync(hid_t f, const char *path, int err) {
    // (a close that fails leaves the file with HDF5: the process then ends through
    // fail_exit, which runs no exit-time close)
    errno = 0;
    if (H5Fclose(f) < 0 && !err) err = errno ? errno : EIO;
    if (!err) err = h5seal_write(path);
    if (!err) {
        int fd = open(path, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) err = errno ? errno : EIO;
        if (fd >= 0) close(fd);
    }
    return err;
}
