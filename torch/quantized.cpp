// quantized.cpp: dynamic quantization of Linear layers with libtorch's own
// quantized operators (the fbgemm/oneDNN kernels behind
// torch.ao.nn.quantized.dynamic.Linear). Weights are quantized and prepacked
// here once; TorchScript then calls quantized.linear_dynamic(x, packed,
// reduce_range) or quantized.linear_dynamic_fp16(x, packed) on them.
//
// These operators are deprecated upstream (torch.ao) but still registered in
// the pinned libtorch; quantized_test.go checks they exist and run.
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/QEngine.h>
#include <fbgemm/Utils.h>

#include <cfloat>
#include <string>
#include <vector>

#include "shim_internal.h"

using et_internal::need;

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The engines compiled into this libtorch, lower-cased as
// torch.backends.quantized.supported_engines names them.
std::vector<std::pair<std::string, at::QEngine>> supported_engines() {
  std::vector<std::pair<std::string, at::QEngine>> out;
  for (auto e : at::globalContext().supportedQEngines()) {
    if (e == at::QEngine::NoQEngine) continue;
    out.emplace_back(lower(c10::toString(e)), e);
  }
  return out;
}

c10::IValue call_op(const char* name, torch::jit::Stack stack) {
  auto op = c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
  op.callBoxed(&stack);
  if (stack.size() != 1) throw std::runtime_error(std::string(name) + " returned no value");
  return stack[0];
}

// Symmetric int8 weights, as PyTorch's dynamic quantization observes them
// (MinMaxObserver / PerChannelMinMaxObserver with qint8 and
// per_tensor_symmetric / per_channel_symmetric): zero point 0 and
// scale = max(|w|) / 127.5, at least float32's epsilon.
at::Tensor quantize_weight(const at::Tensor& w, bool per_channel) {
  const double eps = FLT_EPSILON;
  if (per_channel) {
    auto amax = std::get<0>(w.abs().max(1));
    auto scales = (amax / 127.5).clamp_min(eps).to(at::kDouble);
    auto zero_points = at::zeros({w.size(0)}, at::kLong);
    return at::quantize_per_channel(w, scales, zero_points, 0, at::kQInt8);
  }
  double scale = std::max(w.abs().max().item<float>() / 127.5, eps);
  return at::quantize_per_tensor(w, scale, 0, at::kQInt8);
}

}  // namespace

extern "C" {

char* et_quantized_engines(char** out) {
  ET_GUARD({
    need(out, "out");
    std::string s;
    for (const auto& e : supported_engines()) {
      if (!s.empty()) s += ",";
      s += e.first;
    }
    *out = et_internal::dup_message(s.c_str());
  })
}

char* et_quantized_engine(char** out) {
  ET_GUARD({
    need(out, "out");
    *out = et_internal::dup_message(lower(c10::toString(at::globalContext().qEngine())).c_str());
  })
}

// fbgemm's instruction set for its int8 kernels, as fbgemm picks it (the CPU,
// or FBGEMM_ENABLE_INSTRUCTIONS): "avx512_vnni" and "avx512_vnni_ymm"
// accumulate u8×s8 products in int32 (vpdpbusd); "avx2" and "avx512" add
// pairs of them in int16 first (vpmaddubsw), which saturates when the
// activations use all 8 bits.
char* et_fbgemm_isa(char** out) {
  ET_GUARD({
    need(out, "out");
    const char* name = "anyarch";
    switch (fbgemm::fbgemmInstructionSet()) {
      case fbgemm::inst_set_t::anyarch: name = "anyarch"; break;
      case fbgemm::inst_set_t::avx2: name = "avx2"; break;
      case fbgemm::inst_set_t::avx512: name = "avx512"; break;
      case fbgemm::inst_set_t::avx512_ymm: name = "avx512_ymm"; break;
      case fbgemm::inst_set_t::avx512_vnni: name = "avx512_vnni"; break;
      case fbgemm::inst_set_t::avx512_vnni_ymm: name = "avx512_vnni_ymm"; break;
      case fbgemm::inst_set_t::sve: name = "sve"; break;
    }
    *out = et_internal::dup_message(name);
  })
}

char* et_set_quantized_engine(const char* name) {
  ET_GUARD({
    need(name, "name");
    std::string want = lower(name);
    std::string have;
    for (const auto& e : supported_engines()) {
      if (e.first == want) {
        at::globalContext().setQEngine(e.second);
        return nullptr;
      }
      have += (have.empty() ? "" : ", ") + e.first;
    }
    throw std::invalid_argument("quantized engine " + std::string(name) + " is not in this libtorch (it has: " +
                                (have.empty() ? std::string("none") : have) + ")");
  })
}

char* et_module_register_linear_packed(et_module m, const char* name, et_tensor weight, et_tensor bias,
                                       int kind) {
  ET_GUARD({
    need(m, "module");
    need(name, "name");
    need(weight, "weight");
    at::NoGradGuard no_grad;
    auto w = weight->t.detach().to(at::kCPU, at::kFloat).contiguous();
    if (w.dim() != 2) throw std::invalid_argument("linear weight must be 2-D, got " + c10::str(w.sizes()));
    c10::IValue b;  // None
    if (bias != nullptr) {
      auto bt = bias->t.detach().to(at::kCPU, at::kFloat).contiguous();
      if (bt.dim() != 1 || bt.size(0) != w.size(0)) {
        throw std::invalid_argument("linear bias has shape " + c10::str(bt.sizes()) + ", weight " +
                                    c10::str(w.sizes()));
      }
      b = bt;
    }
    c10::IValue packed;
    switch (kind) {
      case 0:  // int8, one scale per output row
      case 1:  // int8, one scale for the whole weight
        packed = call_op("quantized::linear_prepack", {quantize_weight(w, kind == 0), b});
        break;
      case 2:  // fp16 weights
        packed = call_op("quantized::linear_prepack_fp16", {w, b});
        break;
      default:
        throw std::invalid_argument("unknown packed linear kind " + std::to_string(kind));
    }
    m->m.register_attribute(name, packed.type(), packed);
  })
}

}  // extern "C"
