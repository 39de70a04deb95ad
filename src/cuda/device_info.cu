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

extern "C" void cuda_describe_device(char *buf, int size) {
    int d = -1;
    cudaDeviceProp p;
    if (cudaGetDevice(&d) != cudaSuccess || cudaGetDeviceProperties(&p, d) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(buf, (size_t)size, "GPU %d", d);
        return;
    }
    const double mem = (double)p.totalGlobalMem;
    const int gib = mem >= (double)(1 << 30), mib = mem >= (double)(1 << 20);
    snprintf(buf, (size_t)size, "GPU %d (%s, %.1f %s)", d, p.name, mem / (gib ? 1 << 30 : mib ? 1 << 20 : 1 << 10),
             gib ? "GiB" : mib ? "MiB" : "KiB");
}

extern "C" int cuda_emulated(void) {
#ifdef GRUREC_CUDA_EMULATION
    return 1;
#else
    return 0;
#endif
}
