// The communication layer: the only interface training code calls to talk to other ranks
// (DESIGN.md §5). Backend: MPI (src/comm/comm_mpi.c).
//
// Guarantees
//  - Every collective is collective over all ranks: every rank calls the same functions in
//    the same order with the same sizes (n, bytes, root). Calls from one thread only.
//  - Every collective completes within the timeout (comm_init / comm_set_timeout, measured
//    from the moment this rank enters it), or every surviving rank stops: it prints
//      "grurec: rank R did not answer within T s (seen from rank Q in WHAT)"
//    naming the lowest rank that did not answer a "blame round", and the job is ended
//    with MPI_Abort (exit status 1). A rank that is waiting in a collective joins a blame
//    round started by another rank at once. Nothing ever waits without a deadline.
//  - Sum reductions are deterministic: the result is bitwise identical on every rank and
//    equals ((x_0 + x_1) + x_2) + ... + x_{P-1} computed in the element type (float in
//    float), independent of timing and of the chunking.
//  - Data travel as raw bytes: all ranks must share the byte order (x86-64, aarch64 LE).
//  - Nothing here installs signal handlers (Open MPI itself may, as it always does).
#ifndef GRUREC_COMM_H
#define GRUREC_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "util/check.h"  // GRUREC_NORETURN

typedef struct comm comm;

// MPI_Init (works without mpirun too: a singleton world of 1). timeout_s: the deadline for
// every collective (DESIGN: --comm-timeout, default 300 s); must be > 0. Call once.
// If MPI is already initialised by the caller, it is used and comm_finalize leaves it so.
comm *comm_init(int *argc, char ***argv, double timeout_s);
// A barrier (with the deadline), then MPI_Finalize; frees C. NULL is a no-op. Collective.
void comm_finalize(comm *c);
// What this build's ranks run on: "mpi", or "single" (built without MPI: one process).
const char *comm_kind(void);
int comm_rank(const comm *c);
int comm_size(const comm *c);
// OMPI_COMM_WORLD_LOCAL_RANK, else SLURM_LOCALID, else MPI_LOCALRANKID (MPICH), else 0.
int comm_local_rank(const comm *c);
// timeout_s > 0 (a CHECK otherwise). Local: each rank sets its own (use the same everywhere).
void comm_set_timeout(comm *c, double timeout_s);
double comm_timeout(const comm *c);

// Sum-all-reduce. The result is BITWISE IDENTICAL on every rank and does not depend on
// timing (see above). Implementation: reduce-scatter to segment owners (the owner of a
// segment sums the P contributions in rank order 0,1,2,...) then all-gather of the summed
// segments, in chunks of at most comm_set_chunk_bytes() bytes; on one machine, the same
// through shared memory (comm_shared_memory).
void comm_allreduce_sum_f32(comm *c, float *buf, size_t n);
void comm_allreduce_sum_f64(comm *c, double *buf, size_t n);
void comm_allreduce_sum_i64(comm *c, int64_t *buf, size_t n);  // wraps modulo 2^64
void comm_allreduce_max_i64(comm *c, int64_t *buf, size_t n);
void comm_allreduce_min_i64(comm *c, int64_t *buf, size_t n);
// Variable-length all-gather of int32 values: on return *out (malloc'ed, caller frees;
// never NULL) holds every rank's values concatenated in rank order, counts[r] (caller
// provides P) the number from rank r; returns the total. n >= 0; MINE may be NULL if n == 0.
int64_t comm_allgatherv_i32(comm *c, const int32_t *mine, int64_t n, int32_t **out, int64_t *counts);
// Personalised all-to-all (sharded item tables: rows fetched from their owners, gradients
// sent back): SEND holds, in rank order, SEND_BYTES[q] bytes for each rank q; RECV gets, in
// rank order, RECV_BYTES[q] bytes from each rank q, which the caller knows (a first call
// with one count per rank tells them, or comm_alltoallv_learn). Point-to-point messages
// under the same deadline, or, every rank on this machine, the shared-memory segment.
void comm_alltoallv(comm *c, const void *send, const size_t *send_bytes, void *recv, const size_t *recv_bytes);
// comm_alltoallv where the receiver does not know the sizes: RECV_BYTES[q] is set to what
// rank q sends this one, and RECV has room for RECV_CAP bytes (more fails). Through shared
// memory the counts come with the bytes (one exchange); over messages, a count per rank first.
void comm_alltoallv_learn(comm *c, const void *send, const size_t *send_bytes, void *recv, size_t recv_cap,
                          size_t *recv_bytes);
// comm_alltoallv that hands TAKE each rank's part (rank order, BYTES[q] of them) where it
// lies, valid during the call: through shared memory, read from the sender's slot with no
// copy into a receive buffer; over messages, from a buffer of the call's own.
typedef void (*comm_take_fn)(void *arg, int q, const void *bytes, size_t n);
void comm_alltoallv_take(comm *c, const void *send, const size_t *send_bytes, const size_t *recv_bytes,
                         comm_take_fn take, void *arg);
// Every rank passes the same BYTES and ROOT (0 <= root < P); BUF is overwritten with root's.
void comm_bcast(comm *c, void *buf, size_t bytes, int root);
void comm_barrier(comm *c);
// Payload bytes this rank has sent in collectives so far (for the benchmarks), counted as
// if every transfer were a direct message: all-reduce of n elements of size s sends
// about 2 (P-1)/P n s, all-gather of k bytes sends k (P-1), a broadcast of k bytes sends
// k (P-1) from the root and 0 elsewhere, a barrier 0.
uint64_t comm_bytes_sent(const comm *c);
// Checks that a value (e.g. a config hash) is the same on every rank; if not, every rank
// exits (status 2, through input_fail, so the fail-cleanup hook runs) printing the same
// one line naming the lowest rank R whose value differs from rank 0's, and WHAT:
//   "grurec: rank R: WHAT differs from rank 0 (0x<R's value> vs 0x<rank 0's value>)"
// Collective.
void comm_check_same_u64(comm *c, uint64_t value, const char *what);
// Prints "grurec: rank R: MSG" from this rank, then aborts the whole job:
// MPI_Abort(MPI_COMM_WORLD, code) (code 0 becomes 1; mpirun exits with it). Not
// collective. C may be NULL (the rank then comes from MPI_COMM_WORLD, -1 before MPI_Init).
GRUREC_NORETURN void comm_abort(comm *c, int code, const char *msg);

// All-reduces of ranks that all run on one machine go through a shared-memory segment
// (same bits as the messages; GRUREC_COMM_SHM=0 turns it off for the job). Whether it is
// in use: decided at comm_init, and off for good once a segment could not be shared.
int comm_shared_memory(const comm *c);
// The same sum without copies, for a caller that builds its buffer in place: every rank
// asks for a buffer of N floats (collective: it may grow the segment), writes its values
// there, then calls comm_allreduce_shared_f32(c, N), with no other collective between, and
// reads the sums where it returns them until its next collective. The buffer is NULL (use
// comm_allreduce_sum_f32) on one rank, without shared memory, or for N = 0.
float *comm_shared_buffer_f32(comm *c, size_t n);
const float *comm_allreduce_shared_f32(comm *c, size_t n);
// One copy of the model per machine: a zeroed segment of BYTES that every rank maps at
// its own address (collective: every rank asks for the same BYTES). NULL on every rank,
// with a line from the rank that failed, where the ranks do not share memory (one rank,
// comm_shared_memory off) or the segment cannot be made. Mapped until comm_finalize.
void *comm_node_segment(comm *c, size_t bytes);
// A barrier for ranks that write shared memory (through the segment's flags when
// comm_shared_memory, else comm_barrier), with the same deadline: whatever any rank
// wrote before it, every rank sees after it.
void comm_node_barrier(comm *c);
// Tuning / tests: the largest piece (bytes) one all-reduce round moves; default 16 MiB.
// Every rank must use the same value (the result does not depend on it).
void comm_set_chunk_bytes(comm *c, size_t bytes);

#endif
