// What the CUDA runtime can see on this machine: used by `--device auto` to fall back
// to the CPU backend with one clear line when no usable GPU or driver exists.
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

#ifdef __cplusplus
}
#endif

#endif
