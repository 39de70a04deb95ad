// The NCCL part of the communication layer (DESIGN.md §5): sums of DEVICE buffers over all
// ranks of a comm (one NCCL communicator per process, one GPU per rank). Control traffic
// (the bootstrap id, checks) goes over comm.h; only GPU data goes through NCCL.
// Built into grurec_cuda (src/cuda/CMakeLists.txt); the comm_* functions it calls come from
// comm_mpi.c (grurec_core), so a program linking grurec_cuda also links comm_mpi.c.
//
// Guarantees (the same rules as comm.h)
//  - Collective: every rank calls the same functions in the same order with the same counts.
//    From one thread only.
//  - Nothing waits without a deadline: set-up, every all-reduce and comm_nccl_free complete
//    within comm_timeout(c) seconds (read at each call, measured from entering it), or this
//    rank aborts the NCCL communicator (ncclCommAbort) and ends the job with
//    comm_abort(c, 1, ...), e.g.
//      "grurec: rank R: NCCL all-reduce of N floats did not complete within T s (WHAT)"
//    Unlike comm_mpi.c there is no blame round: every waiting rank names what it waited for.
//  - Every failed NCCL or CUDA call ends the job the same way (MPI_Abort, exit status 1) with
//    "file.c:LINE: CALL failed: <error string> (<ncclGetLastError text>)".
//  - Sums are bitwise identical on every rank (NCCL reduces each element once, on one rank or
//    switch, then distributes the result: ring, tree and NVLS all-reduce alike). They are NOT
//    promised to equal comm.h's rank-order sum ((x_0 + x_1) + ...) and can change when NCCL
//    picks another algorithm (other sizes, rank count, topology, NCCL_ALGO/NCCL_PROTO).
//  - On return, all work enqueued on the stream so far (not only the all-reduce) is complete.
#ifndef GRUREC_COMM_NCCL_H
#define GRUREC_COMM_NCCL_H

#include "comm/comm.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct CUstream_st;  // cudaStream_t is `struct CUstream_st *`: no cuda_runtime.h needed here
typedef struct comm_nccl comm_nccl;

// Collective over all ranks of C. Checks the NCCL library version (runtime major not older
// than the headers', the same version on every rank), then rank 0 makes the ncclUniqueId,
// comm_bcast sends it, and every rank calls ncclCommInitRankConfig (non-blocking) on its
// CURRENT CUDA device (cudaSetDevice first, e.g. to comm_local_rank(c)), polling
// ncclCommGetAsyncError until ready or comm_timeout(c) passes. STREAM: where every
// all-reduce is enqueued (NULL: the legacy default stream); not owned. C must outlive the result.
comm_nccl *comm_nccl_init(comm *c, struct CUstream_st *stream);
// Collective (ncclCommFinalize with the deadline, then ncclCommDestroy). NULL is a no-op.
void comm_nccl_free(comm_nccl *n);

// In-place float sum over all ranks of the device buffer DEV_BUF[0 .. count), enqueued on the
// stream given at init, then waited for (see above). WHAT: the caller's label for messages.
void comm_nccl_allreduce_sum_f32(comm_nccl *n, float *dev_buf, size_t count, const char *what);
// The same for K buffers fused in one ncclGroupStart/End (a step's dense and row gradients);
// counts may be 0 (that buffer may then be NULL).
void comm_nccl_allreduce_sum_f32_group(comm_nccl *n, float *const *dev_bufs, const size_t *counts, int k,
                                       const char *what);
// The all-reduce of comm_nccl_allreduce_sum_f32 without its wait: returns once NCCL has
// taken it, leaving the stream running, so that the caller can queue more work behind it
// (e.g. the copy of what the host must read) before it waits once, with comm_nccl_wait_event.
// The deadline still runs from this call.
void comm_nccl_allreduce_sum_f32_start(comm_nccl *n, float *dev_buf, size_t count, const char *what);
// Polls until EV (a CUDA event recorded on the stream) has completed, aborting as above
// when the oldest started all-reduce still running passes its deadline (none running:
// comm_timeout from now). EV may stand behind some of the started all-reduces only (a
// step's host waits for the step before last): those after it keep their deadlines for
// the next wait. Work queued after EV may still run on return.
struct CUevent_st;
void comm_nccl_wait_event(comm_nccl *n, struct CUevent_st *ev);
// Payload bytes this rank has sent through NCCL, counted like comm_bytes_sent: an all-reduce
// of n floats counts 4 (n - m) + 4 (P - 1) m, m = this rank's share of a balanced split of n
// (about 2 (P-1)/P 4n); whatever NCCL really moves (rings, trees, NVLS) is not visible here.
uint64_t comm_nccl_bytes_sent(const comm_nccl *n);

#ifdef __cplusplus
}
#endif

#endif
