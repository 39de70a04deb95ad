// The one place where the CUDA sources differ between nvcc and grurec's host emulation
// (-DGRUREC_CUDA_EMU=ON, src/cuda/emu/): a kernel launch, and a kernel's dynamic shared
// memory (as HIP's HIP_DYNAMIC_SHARED: an `extern __shared__` array has no host C++ form).
#ifndef GRUREC_CUDA_LAUNCH_H
#define GRUREC_CUDA_LAUNCH_H

#ifdef GRUREC_CUDA_EMULATION
// Queues every block and thread of the grid on STREAM (emu_launch.h).
#define CUDA_LAUNCH(kernel, grid, block, shmem, stream, ...) \
    emu_launch_kernel(#kernel, kernel, grid, block, shmem, stream, __VA_ARGS__)
#define CUDA_DYNAMIC_SHARED(type, name) type *name = static_cast<type *>(emu_dynamic_shared())
#else
#define CUDA_LAUNCH(kernel, grid, block, shmem, stream, ...) kernel<<<grid, block, shmem, stream>>>(__VA_ARGS__)
#define CUDA_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

#endif
