// Reads a text file line by line, plain or gzip (detected by its magic bytes),
// through one large buffer: no allocation or copy per line.
#ifndef GRUREC_LINEREADER_H
#define GRUREC_LINEREADER_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

typedef struct {
    const char *path;
    int fd;
    char *buf;
    size_t cap, start, end;  // unread (decompressed) bytes are buf[start, end)
    long line;         // number of the line last returned (1-based)
    int eof;
    // gzip: streaming inflate over zin (read from fd), so pipes work as well as files.
    int gzip;
    z_stream z;
    unsigned char *zin;
    int z_member_done;  // the last member ended; more input would start another one
    int gz_error;       // the gzip stream broke: fail once the complete lines before it are used
    char gz_msg[128];
    uint64_t bytes_read;  // of the file itself (compressed size for gzip)
} linereader;

// Opens PATH ("-" = stdin); a missing or unreadable file is an input error.
void lr_open(linereader *r, const char *path);
// Next line without its "\n" or "\r\n", NUL-terminated in place. Returns 0 at end of
// input. A truncated or corrupt gzip stream (of one or several members) is an input
// error naming the file.
int lr_next(linereader *r, char **line, size_t *len);
void lr_close(linereader *r);

#endif
