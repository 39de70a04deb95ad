// What the CUDA runtime can see on this machine: used by `--device auto` to fall back
// to the CPU backend with one clear line when no usable GPU or driver exists, and by the
// device line and the out-of-memory message to name the GPU.
#ifndef GRUREC_DEVICE_INFO_H
#define GRUREC_DEVICE_INFO_H

#ifdef __cplusplus
extern "C" {
#endif

// Number of usable GPUs, or 0 with WHY set to the runtime's reason (e.g. code 35,
// cudaErrorInsufficientDriver, on machines without a driver).
int cuda_usable_devices(char *why, int why_size);
// Makes GPU DEVICE current for this process (all later CUDA work runs there).
void cuda_select_device(int device);
// The current GPU in words: "GPU 0 (NVIDIA H100 80GB HBM3, 79.1 GiB)".
void cuda_describe_device(char *buf, int size);
// 1 when this build's CUDA backend runs on grurec's host emulation (-DGRUREC_CUDA_EMU=ON:
// a test build, no GPU), 0 on the real CUDA runtime.
int cuda_emulated(void);

#ifdef __cplusplus
}
#endif

#endif
