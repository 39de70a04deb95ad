// The tensors of models and checkpoints: 1-D HDF5 datasets of floats or int64, each with
// a 'checksum' attribute (FNV-1a over its 32-bit words), so that every reader detects the
// damage HDF5 itself does not see (a flipped byte inside the values).
#ifndef GRUREC_TENSOR_IO_H
#define GRUREC_TENSOR_IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

uint64_t tensor_checksum(const void *v, size_t n_words);  // N_WORDS 32-bit words
// The same checksum taken piece by piece: H = TENSOR_CHECKSUM_INIT, then each piece in
// order (whole 32-bit words) gives what tensor_checksum gives over their concatenation.
#define TENSOR_CHECKSUM_INIT 0xCBF29CE484222325ull
uint64_t tensor_checksum_more(uint64_t h, const void *v, size_t n_words);
// The 'checksum' attribute of dataset D: stores SUM (0, or -1 on failure) / reads it
// (0, or -1 when it is missing or unreadable).
int tensor_set_checksum(hid_t d, uint64_t sum);
int tensor_get_checksum(hid_t d, uint64_t *sum);

// Writes NAME (N elements of 4 bytes (floats) or 8 (int64), chunked, uncompressed) and its
// checksum. 0 on success, -1 on any failure (nothing printed, errno as HDF5 left it): a
// full disk is the caller's to report, naming its file.
int tensor_write_f32(hid_t f, const char *name, const float *v, size_t n);
int tensor_write_i64(hid_t f, const char *name, const int64_t *v, size_t n);
// Bytes in whole 32-bit words (N a multiple of 4: a string table's bytes, io/string_table.h).
int tensor_write_u8(hid_t f, const char *name, const uint8_t *v, size_t n);
// A float tensor of N elements written piece by piece, in order (the same dataset and
// checksum as tensor_write_f32 of the whole): a model's table streamed from its owners
// without one process holding it whole. Each call: 0, or -1 (errno as HDF5 left it); after
// a failure the later calls do nothing and fail too.
typedef struct {
    hid_t d;
    size_t n, at;
    uint64_t sum;
    int failed;
} tensor_stream;
int tensor_stream_open(tensor_stream *w, hid_t f, const char *name, size_t n);
int tensor_stream_write(tensor_stream *w, const float *v, size_t k);
int tensor_stream_close(tensor_stream *w);  // (all N written: the checksum, the dataset closed)
// Reads NAME (exactly N elements) into V and verifies its checksum. NULL when it is whole,
// else what is wrong with it ("missing", "fails its checksum", ...).
const char *tensor_read_f32(hid_t f, const char *name, float *v, size_t n);
const char *tensor_read_i64(hid_t f, const char *name, int64_t *v, size_t n);
// NAME (exactly N elements of ELEM bytes, read as MEM_TYPE) in rounds of ROUND elements,
// each handed to TAKE (may be NULL) as elements LO .. LO + K - 1, its checksum taken on the
// way: NULL when it is whole, else what is wrong (tensor_read_f32's words). No process
// holds the tensor whole; TAKE has seen the rounds before a mismatch is known.
// A round of whole rows of W floats, about 4 MB (tensor_read_rounds' ROUND for tables).
static inline size_t tensor_rows_round(size_t w) { return ((size_t)1 << 20) / w * w + w; }
typedef void (*tensor_round_fn)(void *ctx, size_t lo, size_t k, const void *v);
const char *tensor_read_rounds(hid_t f, const char *name, hid_t mem_type, size_t elem, size_t n, size_t round,
                               tensor_round_fn take, void *ctx);
// Verifies every dataset of F (a model or checkpoint) against its checksum: NULL when all
// do (*count: how many), else the name of the first that does not (static storage).
const char *tensor_verify_all(hid_t f, int *count);

#endif
