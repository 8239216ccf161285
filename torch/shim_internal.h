// shim_internal.h is shared by the C++ files of the shim (shim.cpp,
// tensor.cpp, module.cpp, optimizer.cpp, quantized.cpp): the handle structs behind shim.h's opaque types and the
// ET_GUARD macro that turns every C++ exception into the returned error.
// Go never includes it.
#ifndef EMBTUNE_TORCH_SHIM_INTERNAL_H
#define EMBTUNE_TORCH_SHIM_INTERNAL_H

#include <torch/csrc/jit/api/module.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "shim.h"

struct et_tensor_s {
  at::Tensor t;
};
struct et_module_s {
  torch::jit::Module m;
};

namespace et_internal {

inline char* dup_message(const char* msg) {
  size_t n = std::strlen(msg);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, msg, n + 1);
  return out;
}

// c10::Error messages carry a C++ backtrace; keep only the message a user can act on.
inline char* error_message(const c10::Error& e) { return dup_message(e.what_without_backtrace()); }

inline void need(const void* p, const char* what) {
  if (p == nullptr) throw std::invalid_argument(std::string("nil ") + what);
}

inline et_tensor wrap(at::Tensor t) { return new et_tensor_s{std::move(t)}; }

inline c10::Device device_of(int type, int index) {
  switch (type) {
    case 0:
      return c10::Device(c10::DeviceType::CPU);
    case 1:
      return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
    default:
      throw std::invalid_argument("unsupported device type " + std::to_string(type));
  }
}

inline c10::ScalarType scalar_type_of(int st) {
  switch (st) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 11: case 15:
      return static_cast<c10::ScalarType>(st);
    default:
      throw std::invalid_argument("unsupported scalar type " + std::to_string(st));
  }
}

inline std::vector<int64_t> dims_of(const int64_t* shape, int ndim) {
  if (ndim < 0 || (ndim > 0 && shape == nullptr)) throw std::invalid_argument("bad shape");
  std::vector<int64_t> v(shape, shape + ndim);
  for (auto d : v) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape");
  }
  return v;
}

}  // namespace et_internal

#define ET_GUARD(body)                                                 \
  try {                                                                \
    body;                                                              \
    return nullptr;                                                    \
  } catch (const c10::Error& e) {                                      \
    return et_internal::error_message(e);                              \
  } catch (const std::exception& e) {                                  \
    return et_internal::dup_message(e.what());                         \
  } catch (...) {                                                      \
    return et_internal::dup_message("unknown C++ exception in libtorch"); \
  }

#endif
