// optimizer.cpp implements shim.h's AdamW and gradient clipping.
#include "shim.h"
#include "shim_internal.h"

#include <torch/torch.h>

#include <memory>
#include <stdexcept>
#include <vector>

struct et_adamw_s {
  std::unique_ptr<torch::optim::AdamW> opt;
};

namespace {
using et_internal::device_of;
using et_internal::dims_of;
using et_internal::dup_message;
using et_internal::need;
using et_internal::scalar_type_of;
using et_internal::wrap;

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
