#include "linereader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/check.h"

enum { LR_BUF = 8 << 20, LR_ZIN = 1 << 20 };

static size_t read_some(linereader *r, void *into, size_t want) {
    ssize_t n;
    do n = read(r->fd, into, want); while (n < 0 && errno == EINTR);
    if (n < 0) input_fail(r->path, r->line + 1, "read error: %s", strerror(errno));
    r->bytes_read += (uint64_t)n;
    return (size_t)n;
}

void lr_open(linereader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY);
    if (r->fd < 0) input_fail(path, 0, "cannot open: %s", strerror(errno));
    r->cap = LR_BUF;
    r->buf = xmalloc(r->cap + 1);
    // Sniff the gzip magic (1f 8b) from the first bytes (a pipe may deliver them one
    // at a time); they stay in the buffer, or become the inflater's first input.
    while (r->end < 2) {
        size_t n = read_some(r, r->buf + r->end, r->cap - r->end);
        if (n == 0) break;
        r->end += n;
    }
    if (r->end >= 2 && (unsigned char)r->buf[0] == 0x1f && (unsigned char)r->buf[1] == 0x8b) {
        r->gzip = 1;
        r->zin = xmalloc(r->end > LR_ZIN ? r->end : LR_ZIN);  // the sniffed bytes may exceed LR_ZIN
        memcpy(r->zin, r->buf, r->end);
        r->z.next_in = r->zin;
        r->z.avail_in = (uInt)r->end;
        CHECK(inflateInit2(&r->z, 16 + MAX_WBITS) == Z_OK, "%s: inflateInit2 failed", path);  // 16: gzip header
        r->end = 0;
    } else if (r->end == 0) {
        r->eof = 1;
    }
}

static void gz_broken(linereader *r, const char *what) {
    snprintf(r->gz_msg, sizeof r->gz_msg, "%s", what);
    r->gz_error = 1;
    r->eof = 1;
}

// Inflates into buf[end, cap); reads compressed input as needed. Members follow one
// another (concatenated gzip files are one stream); input ending inside a member,
// or bytes that are not gzip after one, are errors.
static void inflate_more(linereader *r) {
    z_stream *z = &r->z;
    z->next_out = (unsigned char *)r->buf + r->end;
    z->avail_out = (uInt)(r->cap - r->end);
    while (z->avail_out > 0) {
        if (z->avail_in == 0) {
            size_t n = read_some(r, r->zin, LR_ZIN);
            if (n == 0) {
                if (!r->z_member_done) gz_broken(r, "unexpected end of file");
                r->eof = 1;
                break;
            }
            z->next_in = r->zin;
            z->avail_in = (uInt)n;
        }
        if (r->z_member_done) {  // another member follows
            CHECK(inflateReset(z) == Z_OK, "%s: inflateReset failed", r->path);
            r->z_member_done = 0;
        }
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            r->z_member_done = 1;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            gz_broken(r, z->msg ? z->msg : "invalid gzip data");
            break;
        }
        if (rc == Z_STREAM_END || z->avail_out < r->cap - r->end) break;  // return what we have
    }
    r->end = (size_t)((char *)z->next_out - r->buf);
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
    if (r->gzip) {
        inflate_more(r);
    } else {
        size_t n = read_some(r, r->buf + tail, r->cap - tail);
        if (n == 0) r->eof = 1;
        r->end += n;
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
    if (r->gzip) inflateEnd(&r->z);
    if (r->fd >= 0) close(r->fd);
    free(r->buf);
    free(r->zin);
    r->buf = NULL;
    r->zin = NULL;
    r->gzip = 0;
    r->fd = -1;
}
