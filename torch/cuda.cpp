//go:build cuda

// cuda.cpp implements cuda_shim.h with the CUDA runtime API and c10's CUDA
// caching allocator. It compiles only with -tags cuda, against the CUDA
// runtime headers (third_party/libtorch-cuda/include, or a CUDA toolkit's).
#include "cuda_shim.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/util/Exception.h>
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace {

char* dup_cuda_message(const char* msg) {
  size_t n = std::strlen(msg);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, msg, n + 1);
  return out;
}

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
  }
}

void check_index(int index) {
  int n = 0;
  check_cuda(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  if (index < 0 || index >= n) {
    throw std::invalid_argument("CUDA device " + std::to_string(index) + " requested, " +
                                std::to_string(n) + " visible");
  }
}

}  // namespace

#define ET_CUDA_GUARD(...)                                   \
  try {                                                      \
    __VA_ARGS__;                                                    \
    return nullptr;                                          \
  } catch (const c10::Error& e) {                            \
    return dup_cuda_message(e.what_without_backtrace());     \
  } catch (const std::exception& e) {                        \
    return dup_cuda_message(e.what());                       \
  } catch (...) {                                            \
    return dup_cuda_message("unknown C++ exception in CUDA"); \
  }

extern "C" {

char* et_cuda_device_info(int index, char** name, int* major, int* minor, int64_t* total_mem,
                          int64_t* free_mem) {
  ET_CUDA_GUARD({
    if (!name || !major || !minor || !total_mem || !free_mem) throw std::invalid_argument("null output");
    check_index(index);
    cudaDeviceProp p;
    check_cuda(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
    int prev = 0;
    check_cuda(cudaGetDevice(&prev), "cudaGetDevice");
    check_cuda(cudaSetDevice(index), "cudaSetDevice");
    size_t free_b = 0, total_b = 0;
    cudaError_t err = cudaMemGetInfo(&free_b, &total_b);
    cudaSetDevice(prev);
    check_cuda(err, "cudaMemGetInfo");
    char* n = dup_cuda_message(p.name);
    if (n == nullptr) throw std::bad_alloc();
    *name = n;
    *major = p.major;
    *minor = p.minor;
    *total_mem = static_cast<int64_t>(total_b);
    *free_mem = static_cast<int64_t>(free_b);
  })
}

char* et_cuda_versions(int* runtime, int* driver) {
  ET_CUDA_GUARD({
    if (!runtime || !driver) throw std::invalid_argument("null output");
    int r = 0, d = 0;
    check_cuda(cudaRuntimeGetVersion(&r), "cudaRuntimeGetVersion");
    check_cuda(cudaDriverGetVersion(&d), "cudaDriverGetVersion");
    *runtime = r;
    *driver = d;
  })
}

char* et_cuda_peak_allocated(int index, int64_t* out) {
  ET_CUDA_GUARD({
    if (!out) throw std::invalid_argument("null output");
    check_index(index);
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
    *out = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  })
}

char* et_cuda_reset_peak(int index) {
  ET_CUDA_GUARD({
    check_index(index);
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
  })
}

}  // extern "C"
