// distributed.hpp: C++-only definitions shared by distributed.cpp and
// distributed_nccl.cpp. Not for Go.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "distributed.h"

// The same definition as in shim.cpp (one definition across translation
// units, as C++ allows for identical class definitions).
struct et_tensor_s {
  at::Tensor t;
};

struct et_store_s {
  c10::intrusive_ptr<c10d::Store> store;
};

struct et_pg_s {
  c10::intrusive_ptr<c10d::Backend> pg;
};

namespace embtune_dist {

inline char* dup(const std::string& msg) {
  char* out = static_cast<char*>(std::malloc(msg.size() + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, msg.c_str(), msg.size() + 1);
  return out;
}

}  // namespace embtune_dist

#define ET_DIST_GUARD(...)                                                    \
  try {                                                                       \
    __VA_ARGS__;                                                              \
    return nullptr;                                                           \
  } catch (const c10::Error& e) {                                             \
    return embtune_dist::dup(e.what_without_backtrace());                     \
  } catch (const std::exception& e) {                                         \
    return embtune_dist::dup(e.what());                                       \
  } catch (...) {                                                             \
    return embtune_dist::dup("unknown C++ exception in c10d");                \
  }
