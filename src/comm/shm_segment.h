// A shared-memory segment that the ranks on one machine all map: one rank makes it (an
// anonymous memfd, its pages reserved up front, so a full memory is an error here and not
// a SIGBUS later) and names it by its /proc path; the others open that path while the
// maker holds it. It has no name in /dev/shm, so nothing is ever left behind: the memory
// goes when the last process that maps it does, however the processes end.
#ifndef GRUREC_SHM_SEGMENT_H
#define GRUREC_SHM_SEGMENT_H

#include <stddef.h>

typedef struct {
    void *base;  // NULL: not mapped
    size_t bytes;
    int fd;      // the maker's memfd (-1 elsewhere)
} shm_segment;

#define SHM_PATH_MAX 64

// Each returns 0, or -1 with a one-line reason in ERR. shm_segment_make writes the path
// the others open into PATH (SHM_PATH_MAX bytes).
int shm_segment_make(shm_segment *s, size_t bytes, char *path, char *err, size_t err_len);
int shm_segment_open(shm_segment *s, const char *path, size_t bytes, char *err, size_t err_len);
void shm_segment_close(shm_segment *s);

// This machine's identity (the kernel's boot id, else the host name): equal strings mean
// the same machine (containers that separate their processes make opening fail instead,
// and the caller falls back).
void shm_machine_id(char *out, size_t len);

#endif
