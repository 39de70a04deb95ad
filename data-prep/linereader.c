#include "linereader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/check.h"

enum { LR_BUF = 8 << 20 };

void lr_open(linereader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY);
    if (r->fd < 0) input_fail(path, 0, "cannot open: %s", strerror(errno));
    r->cap = LR_BUF;
    r->buf = xmalloc(r->cap + 1);
    // Sniff the gzip magic (1f 8b) from the first bytes; keep them in the buffer.
    ssize_t n;
    do n = read(r->fd, r->buf, r->cap); while (n < 0 && errno == EINTR);
    if (n < 0) input_fail(path, 0, "cannot read: %s", strerror(errno));
    r->end = (size_t)n;
    if (n >= 2 && (unsigned char)r->buf[0] == 0x1f && (unsigned char)r->buf[1] == 0x8b) {
        CHECK(lseek(r->fd, 0, SEEK_SET) == 0, "%s: gzip input must be a seekable file", path);
        r->gz = gzdopen(r->fd, "rb");
        CHECK(r->gz, "%s: gzdopen failed", path);
        gzbuffer(r->gz, 1 << 20);
        r->end = 0;
    } else {
        r->bytes_read = (uint64_t)n;
        if (n == 0) r->eof = 1;
    }
}

// Refills after moving the unread tail to the front; sets eof at end of input.
static void refill(linereader *r) {
    size_t tail = r->end - r->start;
    if (tail == r->cap) {  // a line longer than the buffer: grow it
        r->cap *= 2;
        r->buf = xrealloc(r->buf, r->cap + 1);
    }
    memmove(r->buf, r->buf + r->start, tail);
    r->start = 0;
    r->end = tail;
    size_t want = r->cap - tail;
    if (r->gz) {
        int n = gzread(r->gz, r->buf + tail, (unsigned)want);
        int err = Z_OK;
        const char *msg = gzerror(r->gz, &err);
        if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
            // zlib names the stream "<fd:N>": keep only what went wrong.
            const char *what = strrchr(msg, ':');
            snprintf(r->gz_msg, sizeof r->gz_msg, "%s", what ? what + 2 : msg);
            r->gz_error = 1;
            r->eof = 1;
            if (n < 0) n = 0;
        }
        if (n == 0) r->eof = 1;
        r->end += (size_t)n;
    } else {
        ssize_t n;
        do n = read(r->fd, r->buf + tail, want); while (n < 0 && errno == EINTR);
        if (n < 0) input_fail(r->path, r->line + 1, "read error: %s", strerror(errno));
        if (n == 0) r->eof = 1;
        r->end += (size_t)n;
        r->bytes_read += (uint64_t)n;
    }
}

int lr_next(linereader *r, char **line, size_t *len) {
    for (;;) {
        char *s = r->buf + r->start;
        char *nl = memchr(s, '\n', r->end - r->start);
        if (!nl && r->eof && r->gz_error)  // the line this would be is cut off or corrupt
            input_fail(r->path, r->line + 1, "corrupt or truncated gzip data (%s)", r->gz_msg);
        if (nl || (r->eof && r->end > r->start)) {
            size_t n = nl ? (size_t)(nl - s) : r->end - r->start;
            r->start += nl ? n + 1 : n;
            if (n > 0 && s[n - 1] == '\r') n--;
            s[n] = '\0';  // buf has one spare byte past cap for the last line
            *line = s;
            *len = n;
            r->line++;
            return 1;
        }
        if (r->eof) return 0;
        refill(r);
    }
}

void lr_close(linereader *r) {
    if (r->gz) gzclose(r->gz);  // closes fd too
    else if (r->fd >= 0) close(r->fd);
    free(r->buf);
    r->buf = NULL;
    r->gz = NULL;
    r->fd = -1;
}
