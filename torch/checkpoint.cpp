// checkpoint.cpp is gradient checkpointing for TorchScript modules: the
// operator embtune.checkpoint(self, "method", (args...)) runs one method of
// the module (an encoder layer) without keeping its activations, and
// recomputes them in the backward pass. It is the reentrant scheme of
// PyTorch's torch.utils.checkpoint (use_reentrant=True), which libtorch's
// C++ API lacks:
//
//   - forward runs the method with autograd off and saves its inputs (and
//     no activation inside it), the state of the random generators and the
//     autocast state;
//   - backward detaches the inputs, runs the method again with autograd on
//     from the saved generator state (so dropout draws the same masks) under
//     the saved autocast state, backpropagates the output's gradient
//     through that graph, and returns the inputs' gradients; the generators
//     are put back to where they were, so the run continues as if the
//     method had run once.
//
// With autograd off, or when no tensor argument requires grad, the operator
// just calls the method. Modules that call it can only be loaded where this
// library is linked, as for the other embtune operators (ops.cpp).
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/api/object.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The generators a layer's dropout may draw from: the CPU's, and the
// default generator of the device the tensors live on.
struct RNGStates {
  at::Tensor cpu;
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  at::Tensor other;  // undefined on the CPU
};

at::Tensor generator_state(c10::Device d) {
  auto gen = at::globalContext().defaultGenerator(d);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_generator_state(c10::Device d, const at::Tensor& state) {
  auto gen = at::globalContext().defaultGenerator(d);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

RNGStates save_rng(c10::Device d) {
  RNGStates s;
  s.cpu = generator_state(c10::Device(c10::DeviceType::CPU));
  s.device = d;
  if (!d.is_cpu()) s.other = generator_state(d);
  return s;
}

void restore_rng(const RNGStates& s) {
  set_generator_state(c10::Device(c10::DeviceType::CPU), s.cpu);
  if (s.other.defined()) set_generator_state(s.device, s.other);
}

// call runs self.method(*args) with the tensor arguments replaced, in
// order, by tensors.
at::Tensor call(const c10::IValue& self, const std::string& method, const c10::IValue& args,
                const variable_list& tensors) {
  std::vector<c10::IValue> stack;
  size_t next = 0;
  for (const auto& a : args.toTupleRef().elements()) {
    if (a.isTensor()) {
      stack.emplace_back(tensors.at(next++));
    } else {
      stack.push_back(a);
    }
  }
  torch::jit::Object obj(self.toObject());
  auto fn = obj.find_method(method);
  if (!fn) throw std::invalid_argument("checkpoint: the module has no method " + method);
  c10::IValue r = (*fn)(std::move(stack));
  if (!r.isTensor()) throw std::invalid_argument("checkpoint: method " + method + " must return one tensor");
  return r.toTensor();
}

struct Checkpoint : public torch::autograd::Function<Checkpoint> {
  static at::Tensor forward(AutogradContext* ctx, at::TensorList tensors, const c10::IValue& self,
                            const std::string& method, const c10::IValue& args) {
    // The first tensor argument tells the device (the layer's input).
    c10::Device device = tensors.empty() ? c10::Device(c10::DeviceType::CPU) : tensors[0].device();
    RNGStates rng = save_rng(device);
    const auto dt = device.type();
    ctx->saved_data["self"] = self;
    ctx->saved_data["method"] = method;
    ctx->saved_data["args"] = args;
    ctx->saved_data["rng_cpu"] = rng.cpu;
    ctx->saved_data["rng_device"] = rng.other.defined() ? c10::IValue(rng.other) : c10::IValue();
    ctx->saved_data["device"] = device;
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(dt);
    ctx->saved_data["autocast_dtype"] = at::autocast::get_autocast_dtype(dt);
    variable_list inputs(tensors.begin(), tensors.end());
    ctx->save_for_backward(inputs);
    return call(self, method, args, inputs);  // Function::apply runs this with autograd off
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    variable_list inputs;
    inputs.reserve(saved.size());
    for (size_t i = 0; i < saved.size(); i++) {
      auto d = saved[i].detach();
      d.set_requires_grad(ctx->needs_input_grad(i));
      inputs.push_back(std::move(d));
    }
    c10::Device device = ctx->saved_data["device"].toDevice();
    const auto dt = device.type();
    RNGStates replay;
    replay.cpu = ctx->saved_data["rng_cpu"].toTensor();
    replay.device = device;
    if (!ctx->saved_data["rng_device"].isNone()) replay.other = ctx->saved_data["rng_device"].toTensor();

    RNGStates now = save_rng(device);
    const bool prev_autocast = at::autocast::is_autocast_enabled(dt);
    const auto prev_dtype = at::autocast::get_autocast_dtype(dt);
    at::Tensor out;
    try {
      restore_rng(replay);
      at::autocast::set_autocast_enabled(dt, ctx->saved_data["autocast"].toBool());
      at::autocast::set_autocast_dtype(dt, ctx->saved_data["autocast_dtype"].toScalarType());
      {
        torch::AutoGradMode grad(true);
        out = call(ctx->saved_data["self"], ctx->saved_data["method"].toStringRef(), ctx->saved_data["args"],
                   inputs);
      }
    } catch (...) {
      at::autocast::set_autocast_enabled(dt, prev_autocast);
      at::autocast::set_autocast_dtype(dt, prev_dtype);
      restore_rng(now);
      throw;
    }
    at::autocast::set_autocast_enabled(dt, prev_autocast);
    at::autocast::set_autocast_dtype(dt, prev_dtype);
    restore_rng(now);

    // As torch.utils.checkpoint: backpropagate into every leaf the graph
    // reaches (the detached inputs, and any parameter the method reads from
    // self directly), then hand the inputs' gradients on. Three more
    // entries, none, for the non-tensor arguments of forward.
    variable_list grads(inputs.size() + 3);
    if (out.requires_grad()) {
      torch::autograd::backward({out}, {grad_outputs.at(0)});
      for (size_t i = 0; i < inputs.size(); i++) {
        if (inputs[i].requires_grad()) grads[i] = inputs[i].grad();
      }
    }
    return grads;
  }
};

// checkpoint(self, method, args): self.method(*args), its activations
// recomputed in backward. args is a tuple; its tensors are the inputs that
// gradients flow to (the layer's input and weights).
at::Tensor checkpoint(const c10::IValue& self, const std::string& method, const c10::IValue& args) {
  if (!self.isObject()) throw std::invalid_argument("checkpoint: the first argument must be the module (self)");
  if (!args.isTuple()) throw std::invalid_argument("checkpoint: the arguments must be a tuple");
  variable_list tensors;
  bool any_grad = false;
  for (const auto& a : args.toTupleRef().elements()) {
    if (a.isTensor()) {
      tensors.push_back(a.toTensor());
      any_grad = any_grad || a.toTensor().requires_grad();
    }
  }
  if (!at::GradMode::is_enabled() || !any_grad) return call(self, method, args, tensors);
  return Checkpoint::apply(at::TensorList(tensors), self, method, args);
}

}  // namespace

// ops.cpp holds the namespace's TORCH_LIBRARY; this joins it.
TORCH_LIBRARY_FRAGMENT(embtune, m) {
  m.def("checkpoint(Any self, str method, Any args) -> Tensor", &checkpoint);
}
