#include "device_info.h"

#include <cuda_runtime.h>
#include <stdio.h>

#include "cuda_check.h"

extern "C" int cuda_usable_devices(char *why, int why_size) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, (size_t)why_size, "CUDA unavailable: %s (error %d)", cudaGetErrorString(e), (int)e);
        return 0;
    }
    if (n == 0) snprintf(why, (size_t)why_size, "no CUDA device found");
    return n;
}

extern "C" void cuda_select_device(int device) { CUDA_CHECK(cudaSetDevice(device)); }
