// GRUREC_HD marks a function callable from both host and CUDA device code.
//
// The elementwise and per-row math (fastmath.h, rng.h, loss_rows.h, gru_math.h,
// adagrad_math.h) is written once, in plain C, and the CUDA kernels call the very same
// inline functions as the CPU loops, so both backends do the same IEEE operations in the
// same order (with nvcc's --fmad=false: no contraction into FMA, as in the C build).
// Under a C compiler the macro is empty and the headers are ordinary C11.
#ifndef GRUREC_HD_H
#define GRUREC_HD_H

#ifdef __CUDACC__
#define GRUREC_HD __host__ __device__
#else
#define GRUREC_HD
#endif

#endif
