// cuda_shim.h is the part of the contract that exists only in the CUDA build
// (go build -tags cuda; cuda.cpp). Same rules as shim.h: NULL or a malloc'ed
// error message, exceptions caught, outputs written only on success.
#ifndef EMBTUNE_TORCH_CUDA_SHIM_H
#define EMBTUNE_TORCH_CUDA_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The device's name (free *name), compute capability and memory in bytes.
char* et_cuda_device_info(int index, char** name, int* major, int* minor, int64_t* total_mem,
                          int64_t* free_mem);
// CUDA runtime and driver versions as 1000*major + 10*minor (13000 = 13.0).
char* et_cuda_versions(int* runtime, int* driver);
// Peak bytes held by PyTorch's caching allocator on the device since the last reset.
char* et_cuda_peak_allocated(int index, int64_t* out);
char* et_cuda_reset_peak(int index);

#ifdef __cplusplus
}
#endif

#endif
