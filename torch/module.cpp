// module.cpp implements shim.h's TorchScript modules: building them from
// source (with embtune's resolver), loading, saving, running methods, and
// their parameters.
#include "shim.h"
#include "shim_internal.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {
using et_internal::device_of;
using et_internal::dims_of;
using et_internal::dup_message;
using et_internal::need;
using et_internal::scalar_type_of;
using et_internal::wrap;

// The resolver for Module.Define: TorchScript's native one (`torch` is the
// aten namespace), plus `embtune` for the operators of ops.cpp and
// encoder_ops.cpp, and
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

}  // namespace

extern "C" {

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

char* et_module_redefine(et_module src, const char* name, const char* source, et_module* out) {
  ET_GUARD({
    need(src, "module");
    need(name, "name");
    need(source, "source");
    need(out, "out");
    torch::jit::Module m(name);
    m.register_attribute("training", c10::BoolType::get(), src->m.is_training());
    for (const auto& p : src->m.named_parameters(/*recurse=*/false)) {
      m.register_parameter(p.name, p.value, false);  // the same tensor, not a copy
    }
    m.define(source, std::make_shared<Resolver>());
    *out = new et_module_s{std::move(m)};
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

char* et_module_parameters(et_module m, char*** names, et_tensor** tensors, int* n) {
  ET_GUARD({
    need(m, "module");
    need(names, "names");
    need(tensors, "tensors");
    need(n, "n");
    *names = nullptr;
    *tensors = nullptr;
    *n = 0;
    auto ps = m->m.named_parameters(true);
    std::vector<torch::jit::NameTensor> all;
    for (const auto& p : ps) all.push_back(p);
    if (all.empty()) return nullptr;
    auto nm = static_cast<char**>(std::calloc(all.size(), sizeof(char*)));
    auto ts = static_cast<et_tensor*>(std::calloc(all.size(), sizeof(et_tensor)));
    if (nm == nullptr || ts == nullptr) {
      std::free(nm);
      std::free(ts);
      throw std::bad_alloc();
    }
    try {
      for (size_t k = 0; k < all.size(); k++) {
        nm[k] = dup_message(all[k].name.c_str());
        if (nm[k] == nullptr) throw std::bad_alloc();
        ts[k] = wrap(all[k].value);
      }
    } catch (...) {
      for (size_t k = 0; k < all.size(); k++) {
        std::free(nm[k]);
        delete ts[k];
      }
      std::free(nm);
      std::free(ts);
      throw;
    }
    *names = nm;
    *tensors = ts;
    *n = static_cast<int>(all.size());
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

}  // extern "C"
