// shim.cpp implements shim.h's library-wide calls (version, threads, seeds,
// grad mode, autocast, inference mode). tensor.cpp, module.cpp and
// optimizer.cpp implement the rest. Each function body runs inside ET_GUARD,
// which turns any C++ exception into the returned error string.
#include "shim.h"
#include "shim_internal.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include <stdexcept>
#include <string>

struct et_guard_s {
  c10::InferenceMode mode;
};

namespace {
using et_internal::device_of;
using et_internal::dims_of;
using et_internal::dup_message;
using et_internal::need;
using et_internal::scalar_type_of;
using et_internal::wrap;
}  // namespace

extern "C" {

// ---- library ----

char* et_version(char** out) {
  ET_GUARD({
    need(out, "out");
    std::string v = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) +
                    "." + std::to_string(TORCH_VERSION_PATCH);
    *out = dup_message(v.c_str());
  })
}

char* et_show_config(char** out) {
  ET_GUARD({
    need(out, "out");
    *out = dup_message(at::show_config().c_str());
  })
}

char* et_set_num_threads(int n) {
  ET_GUARD({
    if (n < 1) throw std::invalid_argument("thread count must be at least 1");
    at::set_num_threads(n);
  })
}

char* et_get_num_threads(int* out) { ET_GUARD({ need(out, "out"); *out = at::get_num_threads(); }) }

char* et_manual_seed(uint64_t seed) { ET_GUARD({ torch::manual_seed(seed); }) }

char* et_cuda_device_count(int* out) {
  ET_GUARD({
    need(out, "out");
    *out = static_cast<int>(torch::cuda::device_count());
  })
}

char* et_set_grad_enabled(int enabled, int* previous) {
  ET_GUARD({
    int prev = at::GradMode::is_enabled() ? 1 : 0;
    at::GradMode::set_enabled(enabled != 0);
    if (previous != nullptr) *previous = prev;
  })
}

char* et_set_graph_executor_optimize(int on, int* previous) {
  ET_GUARD({
    int prev = torch::jit::getGraphExecutorOptimize() ? 1 : 0;
    torch::jit::setGraphExecutorOptimize(on != 0);
    if (previous != nullptr) *previous = prev;
  })
}

char* et_autocast_set(int device_type, int enabled, int scalar_type, int* previous) {
  ET_GUARD({
    c10::DeviceType dt = device_of(device_type, 0).type();
    int prev = at::autocast::is_autocast_enabled(dt) ? 1 : 0;
    at::autocast::set_autocast_enabled(dt, enabled != 0);
    if (enabled) at::autocast::set_autocast_dtype(dt, scalar_type_of(scalar_type));
    if (previous != nullptr) *previous = prev;
  })
}

char* et_autocast_clear_cache(void) { ET_GUARD({ at::autocast::clear_cache(); }) }

char* et_inference_mode_new(et_guard* out) {
  ET_GUARD({
    need(out, "out");
    *out = new et_guard_s();
  })
}

void et_guard_free(et_guard g) { delete g; }

}  // extern "C"
