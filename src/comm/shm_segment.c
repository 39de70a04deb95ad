#define _GNU_SOURCE  // memfd_create
#include "shm_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t len, const char *what, int e) {
    snprintf(err, len, "%s: %s", what, strerror(e));
    return -1;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14 (older headers lack the name)
#endif

// Maps the segment and faults every page in now, so that neither rank pays page faults
// inside the step loop. 2 MiB pages where the machine lets shared memory have them
// (/sys/kernel/mm/transparent_hugepage/shmem_enabled: advise, always or within_size):
// the item tables are read and updated at rows scattered over hundreds of MB, and with
// 4 KiB pages every row costs a TLB miss. MAKE: reserve the memory too (the first touch
// of a page the machine cannot give would otherwise kill the process with SIGBUS).
static int map(shm_segment *s, int fd, size_t bytes, int make, char *err, size_t len) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return fail(err, len, "mmap of the shared segment", errno);
    (void)madvise(p, bytes, MADV_HUGEPAGE);  // (a hint: refused where huge pages are off)
    int e = madvise(p, bytes, MADV_POPULATE_WRITE) == 0 ? 0 : errno;
    if (e == EINVAL && make) e = posix_fallocate(fd, 0, (off_t)bytes);  // (kernels before 5.14)
    else if (e == EINVAL) e = 0;
    if (e != 0) {
        munmap(p, bytes);
        return fail(err, len, "reserving the shared segment", e);
    }
    s->base = p;
    s->bytes = bytes;
    return 0;
}

int shm_segment_make(shm_segment *s, size_t bytes, char *path, char *err, size_t len) {
    s->base = NULL;
    s->fd = -1;
    int fd = memfd_create("grurec-shared", MFD_CLOEXEC);
    if (fd < 0) return fail(err, len, "memfd_create", errno);
    if (ftruncate(fd, (off_t)bytes) != 0 || map(s, fd, bytes, 1, err, len) != 0) {
        if (!s->base && !err[0]) fail(err, len, "sizing the shared segment", errno);
        close(fd);
        return -1;
    }
    s->fd = fd;
    snprintf(path, SHM_PATH_MAX, "/proc/%ld/fd/%d", (long)getpid(), fd);
    return 0;
}

int shm_segment_open(shm_segment *s, const char *path, size_t bytes, char *err, size_t len) {
    s->base = NULL;
    s->fd = -1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail(err, len, path, errno);
    struct stat st;
    int r = -1;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < bytes)
        snprintf(err, len, "%s is smaller than %zu bytes", path, bytes);
    else
        r = map(s, fd, bytes, 0, err, len);
    close(fd);  // the mapping stays
    return r;
}

void shm_segment_close(shm_segment *s) {
    if (s->base) munmap(s->base, s->bytes);
    if (s->fd >= 0) close(s->fd);
    s->base = NULL;
    s->bytes = 0;
    s->fd = -1;
}

void shm_machine_id(char *out, size_t len) {
    out[0] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(out, (int)len, f)) out[0] = '\0';
        fclose(f);
        out[strcspn(out, "\n")] = '\0';
    }
    if (!out[0] && gethostname(out, len) != 0) snprintf(out, len, "unknown");
    out[len - 1] = '\0';
}
