// OpenBLAS core selection. Debian 12's OpenBLAS (0.3.21) does not recognise some newer
// x86 CPUs (seen: Sapphire Rapids under a hypervisor) and falls back to its Prescott
// kernels, whose sgemm runs 4-5x slower than the AVX-512 ones on the same core. The
// core is chosen when the library loads, before main(), so the only remedy is to set
// OPENBLAS_CORETYPE and start again: blas_select_core re-executes the program once
// with the best core the CPU supports. A user's own OPENBLAS_CORETYPE is respected.
#ifndef GRUREC_BLAS_SETUP_H
#define GRUREC_BLAS_SETUP_H

void blas_select_core(char **argv);
// The core OpenBLAS runs with ("SkylakeX", "Haswell", …).
const char *blas_core_name(void);

#endif
