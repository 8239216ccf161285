// tensor.cpp implements shim.h's tensors: creation, copies, autograd and
// the few operations Go code calls directly. Everything else runs inside
// TorchScript modules (module.cpp), so there is no op-by-name dispatch here.
#include "shim.h"
#include "shim_internal.h"

#include <torch/torch.h>

#include <mutex>
#include <stdexcept>
#include <vector>

namespace {
using et_internal::device_of;
using et_internal::dims_of;
using et_internal::dup_message;
using et_internal::need;
using et_internal::scalar_type_of;
using et_internal::wrap;
}  // namespace

extern "C" {

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

char* et_tensor_matmul(et_tensor a, et_tensor b, et_tensor* out) {
  ET_GUARD({
    need(a, "tensor a");
    need(b, "tensor b");
    need(out, "out");
    *out = wrap(a->t.matmul(b->t));
  })
}

char* et_tensor_cat(et_tensor* ts, int n, int64_t dim, et_tensor* out) {
  ET_GUARD({
    need(out, "out");
    if (n < 1 || ts == nullptr) throw std::invalid_argument("cat needs at least one tensor");
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int k = 0; k < n; k++) {
      need(ts[k], "tensor");
      v.push_back(ts[k]->t);
    }
    *out = wrap(torch::cat(v, dim));
  })
}

char* et_tensor_mul_scalar(et_tensor a, double s, et_tensor* out) {
  ET_GUARD({
    need(a, "tensor");
    need(out, "out");
    *out = wrap(a->t * s);
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
    // One GEMM [B,1,S]×[B,S,H] reads the embeddings once; (x * m).sum(1)
    // wrote and re-read a temporary as large as x (BenchmarkMeanPool: 2.5x).
    auto m = mask->t.to(x.scalar_type()).unsqueeze(1);
    auto pooled = at::bmm(m, x).squeeze(1) / m.sum(2).clamp_min(1e-9);
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

}  // extern "C"
