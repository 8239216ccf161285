// shim.cpp implements shim.h. Each function body runs inside ET_GUARD, which
// turns any C++ exception into the returned error string.
#include "shim.h"
#include "shim_internal.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <string>

struct et_adamw_s {
  std::unique_ptr<torch::optim::AdamW> opt;
};
struct et_guard_s {
  c10::InferenceMode mode;
};

namespace {

using et_internal::dup_message;
using et_internal::error_message;

et_tensor wrap(at::Tensor t) { return new et_tensor_s{std::move(t)}; }

c10::Device device_of(int type, int index) {
  switch (type) {
    case 0:
      return c10::Device(c10::DeviceType::CPU);
    case 1:
      return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
    default:
      throw std::invalid_argument("unsupported device type " + std::to_string(type));
  }
}

c10::ScalarType scalar_type_of(int st) {
  switch (st) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 11: case 15:
      return static_cast<c10::ScalarType>(st);
    default:
      throw std::invalid_argument("unsupported scalar type " + std::to_string(st));
  }
}

using et_internal::need;

std::vector<int64_t> dims_of(const int64_t* shape, int ndim) {
  if (ndim < 0 || (ndim > 0 && shape == nullptr)) throw std::invalid_argument("bad shape");
  std::vector<int64_t> v(shape, shape + ndim);
  for (auto d : v) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape");
  }
  return v;
}

// The resolver for Module.Define: TorchScript's native one (`torch` is the
// aten namespace), plus `embtune` for the operators of ops.cpp and
// `quantized` for libtorch's quantized operators. The native
// resolver has no `torch.ops`, so custom operators need a name of their own.
struct Resolver : public torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction& fn,
                                                         const torch::jit::SourceRange& loc) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "embtune") return std::make_shared<torch::jit::BuiltinModule>("embtune");
    // libtorch's quantized operators (quantized.cpp prepacks their weights).
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string& name, const torch::jit::SourceRange& loc) override { return nullptr; }
};

// One AdamW update with ATen's fused kernel (torch.optim.AdamW(fused=True)):
// a single pass over each parameter instead of torch::optim::AdamW::step's
// eight or so elementwise ops per parameter (the optimizer phase, clipping
// included, measured about 7% of a MiniLM training step on the CPU before
// this; the fused step's own gain was not timed apart). The same math, and the state lives in torch::optim::AdamW's
// containers, so Save/Load and its checkpoints are unchanged. Groups whose
// parameters are not all on one device with one dtype, or that ask for
// amsgrad, make the whole step take torch::optim::AdamW's own path.
bool adamw_fusable(torch::optim::AdamW& opt) {
  for (auto& group : opt.param_groups()) {
    if (static_cast<torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
    const at::Tensor* first = nullptr;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (p.grad().is_sparse() || p.grad().scalar_type() != p.scalar_type()) return false;
      if (first == nullptr) {
        first = &p;
      } else if (p.device() != first->device() || p.scalar_type() != first->scalar_type()) {
        return false;
      }
    }
  }
  return true;
}

void adamw_step(torch::optim::AdamW& opt) {
  if (!adamw_fusable(opt)) {
    opt.step();
    return;
  }
  torch::NoGradGuard no_grad;
  auto& states = opt.state();
  for (auto& group : opt.param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    std::vector<at::Tensor> ps, gs, ms, vs, steps;
    for (auto& p : group.params()) {
      if (p.grad().defined()) ps.push_back(p);
    }
    if (ps.empty()) continue;
    for (auto& p : ps) {
      auto key = p.unsafeGetTensorImpl();
      auto it = states.find(key);
      if (it == states.end()) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = states.emplace(key, std::move(st)).first;
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      st.step(st.step() + 1);
      gs.push_back(p.grad());
      ms.push_back(st.exp_avg());
      vs.push_back(st.exp_avg_sq());
      steps.push_back(at::full({}, static_cast<double>(st.step()), p.options().dtype(at::kFloat)));
    }
    auto [beta1, beta2] = o.betas();
    at::_fused_adamw_(ps, gs, ms, vs, {}, steps, o.lr(), beta1, beta2, o.weight_decay(), o.eps(),
                      /*amsgrad=*/false, /*maximize=*/false);
  }
}

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

// ---- tensors ----

char* et_tensor_from_data(const void* data, size_t nbytes, const int64_t* shape, int ndim,
                          int scalar_type, et_tensor* out) {
  ET_GUARD({
    need(out, "out");
    auto st = scalar_type_of(scalar_type);
    auto dims = dims_of(shape, ndim);
    auto t = torch::empty(dims, torch::TensorOptions().dtype(st));
    size_t want = static_cast<size_t>(t.numel()) * t.element_size();
    if (want != nbytes) {
      throw std::invalid_argument("data has " + std::to_string(nbytes) + " bytes, shape needs " +
                                  std::to_string(want));
    }
    if (nbytes > 0) {
      need(data, "data");
      std::memcpy(t.data_ptr(), data, nbytes);
    }
    *out = wrap(std::move(t));
  })
}

char* et_tensor_zeros(const int64_t* shape, int ndim, int scalar_type, int device_type,
                      int device_index, et_tensor* out) {
  ET_GUARD({
    need(out, "out");
    auto opts = torch::TensorOptions()
                    .dtype(scalar_type_of(scalar_type))
                    .device(device_of(device_type, device_index));
    *out = wrap(torch::zeros(dims_of(shape, ndim), opts));
  })
}

char* et_tensor_randn(const int64_t* shape, int ndim, int scalar_type, et_tensor* out) {
  ET_GUARD({
    need(out, "out");
    *out = wrap(torch::randn(dims_of(shape, ndim), torch::TensorOptions().dtype(scalar_type_of(scalar_type))));
  })
}

char* et_tensor_copy_to(et_tensor t, void* dst, size_t nbytes) {
  ET_GUARD({
    need(t, "tensor");
    auto c = t->t.detach().to(c10::Device(c10::DeviceType::CPU)).contiguous();
    size_t have = static_cast<size_t>(c.numel()) * c.element_size();
    if (have != nbytes) {
      throw std::invalid_argument("tensor has " + std::to_string(have) + " bytes, destination " +
                                  std::to_string(nbytes));
    }
    if (nbytes > 0) {
      need(dst, "destination");
      std::memcpy(dst, c.data_ptr(), nbytes);
    }
  })
}

char* et_tensor_ndim(et_tensor t, int* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    *out = static_cast<int>(t->t.dim());
  })
}

char* et_tensor_shape(et_tensor t, int64_t* dims, int cap) {
  ET_GUARD({
    need(t, "tensor");
    auto sizes = t->t.sizes();
    if (static_cast<int>(sizes.size()) > cap) throw std::invalid_argument("shape buffer too small");
    for (size_t i = 0; i < sizes.size(); i++) dims[i] = sizes[i];
  })
}

char* et_tensor_scalar_type(et_tensor t, int* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    *out = static_cast<int>(t->t.scalar_type());
  })
}

char* et_tensor_device(et_tensor t, int* device_type, int* device_index) {
  ET_GUARD({
    need(t, "tensor");
    auto d = t->t.device();
    if (device_type) *device_type = static_cast<int>(d.type());
    if (device_index) *device_index = d.has_index() ? d.index() : 0;
  })
}

char* et_tensor_requires_grad(et_tensor t, int* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    *out = t->t.requires_grad() ? 1 : 0;
  })
}

char* et_tensor_set_requires_grad(et_tensor t, int on) {
  ET_GUARD({
    need(t, "tensor");
    t->t.set_requires_grad(on != 0);
  })
}

char* et_tensor_to(et_tensor t, int device_type, int device_index, int scalar_type, et_tensor* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    auto st = scalar_type < 0 ? t->t.scalar_type() : scalar_type_of(scalar_type);
    *out = wrap(t->t.to(device_of(device_type, device_index), st));
  })
}

char* et_tensor_shallow_clone(et_tensor t, et_tensor* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    *out = wrap(t->t);
  })
}

char* et_tensor_detach(et_tensor t, et_tensor* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    *out = wrap(t->t.detach());
  })
}

char* et_tensor_item_double(et_tensor t, double* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    if (t->t.numel() != 1) throw std::invalid_argument("item() needs a tensor with one element");
    *out = t->t.item<double>();
  })
}

char* et_tensor_backward(et_tensor t) {
  ET_GUARD({
    need(t, "tensor");
    t->t.backward();
  })
}

char* et_tensor_grad(et_tensor t, et_tensor* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    const auto& g = t->t.grad();
    *out = g.defined() ? wrap(g) : nullptr;
  })
}

char* et_tensor_copy_(et_tensor dst, et_tensor src) {
  ET_GUARD({
    need(dst, "destination");
    need(src, "source");
    torch::NoGradGuard no_grad;
    if (dst->t.sizes() != src->t.sizes()) {
      throw std::invalid_argument("copy_: shape " + c10::str(src->t.sizes()) + " does not match " +
                                  c10::str(dst->t.sizes()));
    }
    dst->t.copy_(src->t);
  })
}

void et_tensor_free(et_tensor t) { delete t; }

char* et_tensor_unary(const char* op, et_tensor a, et_tensor* out) {
  ET_GUARD({
    need(op, "op");
    need(a, "tensor");
    need(out, "out");
    const std::string o(op);
    at::Tensor r;
    if (o == "neg") r = a->t.neg();
    else if (o == "exp") r = a->t.exp();
    else if (o == "log") r = a->t.log();
    else if (o == "sqrt") r = a->t.sqrt();
    else if (o == "relu") r = a->t.relu();
    else if (o == "gelu") r = at::gelu(a->t);
    else if (o == "tanh") r = a->t.tanh();
    else if (o == "t") r = a->t.t();
    else if (o == "contiguous") r = a->t.contiguous();
    else if (o == "clone") r = a->t.clone();
    else if (o == "l2_normalize") r = a->t / a->t.norm(2, {-1}, true).clamp_min(1e-12);
    else if (o == "softmax") r = a->t.softmax(-1);
    else if (o == "log_softmax") r = a->t.log_softmax(-1);
    else throw std::invalid_argument("unknown unary op " + o);
    *out = wrap(std::move(r));
  })
}

char* et_tensor_binary(const char* op, et_tensor a, et_tensor b, et_tensor* out) {
  ET_GUARD({
    need(op, "op");
    need(a, "tensor a");
    need(b, "tensor b");
    need(out, "out");
    const std::string o(op);
    at::Tensor r;
    if (o == "add") r = a->t + b->t;
    else if (o == "sub") r = a->t - b->t;
    else if (o == "mul") r = a->t * b->t;
    else if (o == "div") r = a->t / b->t;
    else if (o == "matmul") r = a->t.matmul(b->t);
    else if (o == "cat0") r = torch::cat({a->t, b->t}, 0);
    else if (o == "cos_sim") {
      // sentence-transformers util.cos_sim: normalise rows, then a @ b.T.
      auto an = a->t / a->t.norm(2, {-1}, true).clamp_min(1e-12);
      auto bn = b->t / b->t.norm(2, {-1}, true).clamp_min(1e-12);
      r = an.matmul(bn.t());
    } else throw std::invalid_argument("unknown binary op " + o);
    *out = wrap(std::move(r));
  })
}

char* et_tensor_scalar_op(const char* op, et_tensor a, double s, et_tensor* out) {
  ET_GUARD({
    need(op, "op");
    need(a, "tensor");
    need(out, "out");
    const std::string o(op);
    at::Tensor r;
    if (o == "add") r = a->t + s;
    else if (o == "mul") r = a->t * s;
    else if (o == "div") r = a->t / s;
    else if (o == "pow") r = a->t.pow(s);
    else if (o == "clamp_min") r = a->t.clamp_min(s);
    else throw std::invalid_argument("unknown scalar op " + o);
    *out = wrap(std::move(r));
  })
}

char* et_tensor_reduce(const char* op, et_tensor a, const int64_t* dims, int ndims, int keepdim,
                       et_tensor* out) {
  ET_GUARD({
    need(op, "op");
    need(a, "tensor");
    need(out, "out");
    const std::string o(op);
    std::vector<int64_t> d = dims_of(nullptr, 0);
    if (ndims > 0) d.assign(dims, dims + ndims);
    at::Tensor r;
    if (o == "sum") r = ndims == 0 ? a->t.sum() : a->t.sum(d, keepdim != 0);
    else if (o == "mean") r = ndims == 0 ? a->t.mean() : a->t.mean(d, keepdim != 0);
    else if (o == "max") r = ndims == 0 ? a->t.max() : std::get<0>(a->t.max(d.at(0), keepdim != 0));
    else if (o == "argmax") r = ndims == 0 ? a->t.argmax() : a->t.argmax(d.at(0), keepdim != 0);
    else throw std::invalid_argument("unknown reduction " + o);
    *out = wrap(std::move(r));
  })
}

char* et_tensor_cross_entropy(et_tensor logits, et_tensor targets, et_tensor* out) {
  ET_GUARD({
    need(logits, "logits");
    need(targets, "targets");
    need(out, "out");
    *out = wrap(torch::nn::functional::cross_entropy(logits->t, targets->t));
  })
}

char* et_mean_pool(et_tensor token_embeddings, et_tensor mask, int normalize, et_tensor* out) {
  ET_GUARD({
    need(token_embeddings, "token embeddings");
    need(mask, "mask");
    need(out, "out");
    const auto& x = token_embeddings->t;
    if (x.dim() != 3) throw std::invalid_argument("token embeddings must be [batch, seq, hidden]");
    if (mask->t.dim() != 2 || mask->t.size(0) != x.size(0) || mask->t.size(1) != x.size(1)) {
      throw std::invalid_argument("mask must be [batch, seq] matching the token embeddings");
    }
    auto m = mask->t.to(x.scalar_type()).unsqueeze(-1);
    auto pooled = (x * m).sum(1) / m.sum(1).clamp_min(1e-9);
    if (normalize) pooled = pooled / pooled.norm(2, {-1}, true).clamp_min(1e-12);
    *out = wrap(std::move(pooled));
  })
}

char* et_tensor_narrow(et_tensor t, int64_t dim, int64_t start, int64_t length, et_tensor* out) {
  ET_GUARD({
    need(t, "tensor");
    need(out, "out");
    *out = wrap(t->t.narrow(dim, start, length));
  })
}

char* et_tensor_arange(int64_t n, int device_type, int device_index, et_tensor* out) {
  ET_GUARD({
    need(out, "out");
    auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device_of(device_type, device_index));
    *out = wrap(torch::arange(n, opts));
  })
}

char* et_rng_get_state(int device_type, int device_index, et_tensor* out) {
  ET_GUARD({
    need(out, "out");
    auto gen = at::globalContext().defaultGenerator(device_of(device_type, device_index));
    std::lock_guard<std::mutex> lock(gen.mutex());
    *out = wrap(gen.get_state());
  })
}

char* et_rng_set_state(int device_type, int device_index, et_tensor state) {
  ET_GUARD({
    need(state, "state");
    auto gen = at::globalContext().defaultGenerator(device_of(device_type, device_index));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state->t);
  })
}

char* et_clip_grad_norm(et_tensor* params, int n, double max_norm, double* total_norm) {
  ET_GUARD({
    if (n < 0 || (n > 0 && params == nullptr)) throw std::invalid_argument("bad parameter list");
    std::vector<at::Tensor> ps;
    ps.reserve(n);
    for (int i = 0; i < n; i++) {
      need(params[i], "parameter");
      ps.push_back(params[i]->t);
    }
    double norm = torch::nn::utils::clip_grad_norm_(ps, max_norm, 2.0);
    if (total_norm) *total_norm = norm;
  })
}

// ---- modules ----

char* et_module_new(const char* name, et_module* out) {
  ET_GUARD({
    need(name, "name");
    need(out, "out");
    torch::jit::Module m(name);
    // Module::train() needs this attribute, and TorchScript code reads it.
    m.register_attribute("training", c10::BoolType::get(), true);
    *out = new et_module_s{std::move(m)};
  })
}

char* et_module_load(const char* path, int device_type, int device_index, et_module* out) {
  ET_GUARD({
    need(path, "path");
    need(out, "out");
    auto m = torch::jit::load(path, device_of(device_type, device_index));
    *out = new et_module_s{std::move(m)};
  })
}

char* et_module_save(et_module m, const char* path) {
  ET_GUARD({
    need(m, "module");
    need(path, "path");
    m->m.save(path);
  })
}

char* et_module_register_parameter(et_module m, const char* name, et_tensor t, int requires_grad) {
  ET_GUARD({
    need(m, "module");
    need(name, "name");
    need(t, "tensor");
    auto p = t->t.detach().clone();
    p.set_requires_grad(requires_grad != 0);
    m->m.register_parameter(name, p, false);
  })
}

char* et_module_define(et_module m, const char* source) {
  ET_GUARD({
    need(m, "module");
    need(source, "source");
    m->m.define(source, std::make_shared<Resolver>());
  })
}

char* et_module_run(et_module m, const char* method, et_tensor* inputs, int nin, et_tensor* outputs,
                    int cap, int* nout) {
  ET_GUARD({
    need(m, "module");
    need(method, "method");
    need(nout, "nout");
    if (nin < 0 || (nin > 0 && inputs == nullptr)) throw std::invalid_argument("bad input list");
    std::vector<c10::IValue> args;
    args.reserve(nin);
    for (int i = 0; i < nin; i++) {
      need(inputs[i], "input tensor");
      args.emplace_back(inputs[i]->t);
    }
    auto fn = m->m.find_method(method);
    if (!fn) throw std::invalid_argument(std::string("module has no method ") + method);
    c10::IValue r = (*fn)(std::move(args));
    std::vector<at::Tensor> outs;
    if (r.isTensor()) {
      outs.push_back(r.toTensor());
    } else if (r.isTuple()) {
      for (const auto& e : r.toTupleRef().elements()) outs.push_back(e.toTensor());
    } else if (r.isTensorList()) {
      for (const auto& e : r.toTensorVector()) outs.push_back(e);
    } else {
      throw std::invalid_argument(std::string("method ") + method + " returned " + r.tagKind() +
                                  ", want tensors");
    }
    if (static_cast<int>(outs.size()) > cap) {
      throw std::invalid_argument("method returned " + std::to_string(outs.size()) +
                                  " tensors, room for " + std::to_string(cap));
    }
    for (size_t i = 0; i < outs.size(); i++) outputs[i] = wrap(std::move(outs[i]));
    *nout = static_cast<int>(outs.size());
  })
}

char* et_module_num_parameters(et_module m, int* out) {
  ET_GUARD({
    need(m, "module");
    need(out, "out");
    *out = static_cast<int>(m->m.named_parameters(true).size());
  })
}

char* et_module_parameter(et_module m, int index, char** name, et_tensor* out) {
  ET_GUARD({
    need(m, "module");
    int i = 0;
    for (const auto& p : m->m.named_parameters(true)) {
      if (i++ == index) {
        if (name) *name = dup_message(p.name.c_str());
        if (out) *out = wrap(p.value);
        return nullptr;
      }
    }
    throw std::out_of_range("parameter index " + std::to_string(index) + " out of range");
  })
}

char* et_module_set_parameter(et_module m, const char* name, et_tensor value) {
  ET_GUARD({
    need(m, "module");
    need(name, "name");
    need(value, "value");
    for (const auto& p : m->m.named_parameters(true)) {
      if (p.name == name) {
        if (p.value.sizes() != value->t.sizes()) {
          throw std::invalid_argument(std::string("parameter ") + name + " has shape " +
                                      c10::str(p.value.sizes()) + ", value has " +
                                      c10::str(value->t.sizes()));
        }
        torch::NoGradGuard no_grad;
        p.value.copy_(value->t);
        return nullptr;
      }
    }
    throw std::invalid_argument(std::string("module has no parameter ") + name);
  })
}

char* et_module_train(et_module m, int on) {
  ET_GUARD({
    need(m, "module");
    m->m.train(on != 0);
  })
}

char* et_module_is_training(et_module m, int* out) {
  ET_GUARD({
    need(m, "module");
    need(out, "out");
    *out = m->m.is_training() ? 1 : 0;
  })
}

char* et_module_to(et_module m, int device_type, int device_index) {
  ET_GUARD({
    need(m, "module");
    m->m.to(device_of(device_type, device_index));
  })
}

void et_module_free(et_module m) { delete m; }

// ---- AdamW ----

char* et_adamw_new(double lr, double beta1, double beta2, double eps, et_adamw* out) {
  ET_GUARD({
    need(out, "out");
    auto opts = torch::optim::AdamWOptions(lr).betas({beta1, beta2}).eps(eps).weight_decay(0.0);
    auto opt = std::make_unique<torch::optim::AdamW>(std::vector<torch::optim::OptimizerParamGroup>{}, opts);
    *out = new et_adamw_s{std::move(opt)};
  })
}

char* et_adamw_add_group(et_adamw o, et_tensor* params, int n, double lr, double weight_decay) {
  ET_GUARD({
    need(o, "optimizer");
    if (n <= 0 || params == nullptr) throw std::invalid_argument("a parameter group needs parameters");
    std::vector<at::Tensor> ps;
    for (int i = 0; i < n; i++) {
      need(params[i], "parameter");
      ps.push_back(params[i]->t);
    }
    auto opts = std::make_unique<torch::optim::AdamWOptions>(
        static_cast<const torch::optim::AdamWOptions&>(o->opt->defaults()));
    opts->lr(lr).weight_decay(weight_decay);
    o->opt->add_param_group(torch::optim::OptimizerParamGroup(ps, std::move(opts)));
  })
}

char* et_adamw_set_lr(et_adamw o, int group, double lr) {
  ET_GUARD({
    need(o, "optimizer");
    auto& groups = o->opt->param_groups();
    if (group < 0 || group >= static_cast<int>(groups.size())) {
      throw std::out_of_range("parameter group " + std::to_string(group) + " out of range");
    }
    static_cast<torch::optim::AdamWOptions&>(groups[group].options()).lr(lr);
  })
}

char* et_adamw_zero_grad(et_adamw o) {
  ET_GUARD({
    need(o, "optimizer");
    o->opt->zero_grad(true);
  })
}

char* et_adamw_step(et_adamw o) {
  ET_GUARD({
    need(o, "optimizer");
    adamw_step(*o->opt);
  })
}

char* et_adamw_save(et_adamw o, const char* path) {
  ET_GUARD({
    need(o, "optimizer");
    need(path, "path");
    torch::save(*o->opt, path);
  })
}

char* et_adamw_load(et_adamw o, const char* path) {
  ET_GUARD({
    need(o, "optimizer");
    need(path, "path");
    torch::load(*o->opt, path);
  })
}

void et_adamw_free(et_adamw o) { delete o; }

}  // extern "C"
