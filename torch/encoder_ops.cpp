// encoder_ops.cpp: three fused CPU operators for the inference-only int8
// encoder (minilm/quantized.go), registered with the dispatcher in ops.cpp's
// namespace, so that its TorchScript calls them as embtune.NAME:
//
//   attention(qkv, offsets, heads): softmax(QKᵀ/√d)V for unpadded tokens,
//     each sequence attending to itself only. qkv is [T, 3H] as the fused QKV
//     GEMM writes it; offsets [B+1] (int64) are where each sequence starts.
//     No padding, no scatter and gather around scaled_dot_product_attention.
//   add_layer_norm(a, r, weight, bias, eps, smooth): x = LayerNorm(a + r) and
//     x * smooth (the next GEMM's smoothed input) in one pass; without
//     smooth both results are x.
//   gelu_(x): erf GELU in place, with Abramowitz & Stegun 7.1.28's erf
//     (|error| ≤ 3e-7, no exp).
//   row_scale(x, bounds): each row over its largest magnitude, with two
//     bound rows appended, and the magnitudes (the int8 encoder's
//     per-token activation scale).
//
// Why: at one short query the encoder is ~150 small operators whose
// dispatch, allocation and OpenMP fork cost as much as their arithmetic
// (README, "Single-query latency"). Small inputs run on the calling thread;
// large ones split with at::parallel_for, as ATen's own kernels do.
//
// The kernels are written once (encoder_kernels.h) and compiled for AVX2
// with FMA and for AVX-512; the CPU picks at run time. On a CPU with
// neither, for a head size other than 32, or with EMBTUNE_ENCODER_OPS=aten,
// each operator computes the same thing with ATen operators. One 19-token
// query through the int8 encoder, forward only, on an AVX-512 Xeon: 1.36 ms
// with the AVX-512 kernels, 1.38 with AVX2, 1.64 with the ATen versions
// (52 tokens: 3.11, 3.28, 3.55).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

// The vector kernels need GCC's per-function targets and x86-64's
// intrinsics; elsewhere the operators run their ATen versions.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EMBTUNE_VECTOR_KERNELS 1
#include <immintrin.h>
#else
#define EMBTUNE_VECTOR_KERNELS 0
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

#if EMBTUNE_VECTOR_KERNELS
// The primitives encoder_kernels.h is written against, for each
// instruction set, and the kernels compiled for it.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
using vf = __m256;
constexpr int W = 8;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset(float f) { return _mm256_set1_ps(f); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vbcast(const float* p) { return _mm256_broadcast_ss(p); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vabs(vf a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
// Lanes j0 + l below n keep x; the others take other.
inline vf vbelow_else(vf x, vf other, int j0, int n) {
  const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - j0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  return _mm256_blendv_ps(other, x, keep);
}
// Where x's sign bit is set, if_neg; elsewhere if_not.
inline vf vsel_neg(vf x, vf if_neg, vf if_not) { return _mm256_blendv_ps(if_not, if_neg, x); }
inline float vhsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float vhmax(vf v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline vf vfloor(vf x) { return _mm256_floor_ps(x); }
// p · 2^n for integral n in float32's exponent range.
inline vf vscale2(vf p, vf n) {
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#include "encoder_kernels.h"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
namespace avx512 {
using vf = __m512;
constexpr int W = 16;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset(float f) { return _mm512_set1_ps(f); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vbcast(const float* p) { return _mm512_set1_ps(*p); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vabs(vf a) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff))); }
inline vf vbelow_else(vf x, vf other, int j0, int n) {
  const int k = n - j0;
  const __mmask16 keep = k >= 16 ? __mmask16(0xFFFF) : k <= 0 ? __mmask16(0) : __mmask16((1u << k) - 1);
  return _mm512_mask_blend_ps(keep, other, x);
}
inline vf vsel_neg(vf x, vf if_neg, vf if_not) {
  const __mmask16 neg = _mm512_cmplt_epi32_mask(_mm512_castps_si512(x), _mm512_setzero_si512());  // the sign bit
  return _mm512_mask_blend_ps(neg, if_not, if_neg);
}
inline float vhsum(vf v) { return _mm512_reduce_add_ps(v); }
inline float vhmax(vf v) { return _mm512_reduce_max_ps(v); }
inline vf vfloor(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline vf vscale2(vf p, vf n) {
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}
#include "encoder_kernels.h"
}  // namespace avx512
#pragma GCC pop_options
#endif  // EMBTUNE_VECTOR_KERNELS

// One instruction set's kernels.
struct Kernels {
  size_t (*att_scratch)(int n);
  void (*att_head32)(const float* qkv, long ld, float* out, long ldo, int n, int H, int h, float scale, float* scratch);
  void (*add_ln_rows)(const float* a, const float* r, const float* w, const float* b, const float* sm, float* x, float* xs,
                      long r0, long r1, int H, float eps);
  void (*gelu_span)(float* p, long n);
};

// The kernels that run: AVX-512 where the CPU has it, else AVX2 with FMA;
// nullptr for the ATen versions (no such CPU, or EMBTUNE_ENCODER_OPS=aten).
// EMBTUNE_ENCODER_OPS=avx2 asks for the narrower ones. The variable is read
// on every call (a check, and a way out should a kernel misbehave on some CPU).
const Kernels* vector_kernels() {
#if EMBTUNE_VECTOR_KERNELS
  static const Kernels k256{avx2::att_scratch, avx2::att_head32, avx2::add_ln_rows, avx2::gelu_span};
  static const Kernels k512{avx512::att_scratch, avx512::att_head32, avx512::add_ln_rows, avx512::gelu_span};
  static const Kernels* best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return &k512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &k256;
    return static_cast<const Kernels*>(nullptr);
  }();
  const char* force = std::getenv("EMBTUNE_ENCODER_OPS");
  if (force != nullptr && std::strcmp(force, "aten") == 0) return nullptr;
  if (force != nullptr && std::strcmp(force, "avx2") == 0 && best != nullptr) return &k256;
  return best;
#else
  return nullptr;
#endif
}

void need_float(const at::Tensor& t, const char* op, const char* what, int64_t dim) {
  TORCH_CHECK(t.device().is_cpu(), "embtune::", op, ": ", what, " must be on the CPU, not ", t.device());
  TORCH_CHECK(t.scalar_type() == at::kFloat, "embtune::", op, ": ", what, " must be float32, not ", t.scalar_type());
  TORCH_CHECK(t.dim() == dim, "embtune::", op, ": ", what, " must have ", dim, " dimensions, not ", t.dim());
}

// Below this many multiply-adds (or elements) an operator runs on the calling
// thread: an OpenMP fork and join costs more than it saves.
constexpr double kSerialWork = 4e6;
constexpr int64_t kSerialElems = 1 << 16;

at::Tensor attention(const at::Tensor& qkv_in, const at::Tensor& offsets_in, int64_t heads) {
  need_float(qkv_in, "attention", "qkv", 2);
  TORCH_CHECK(offsets_in.device().is_cpu() && at::isIntegralType(offsets_in.scalar_type(), /*includeBool=*/false),
              "embtune::attention: offsets must be an integer CPU tensor, not ", offsets_in.scalar_type(), " on ", offsets_in.device());
  TORCH_CHECK(offsets_in.dim() == 1 && offsets_in.size(0) >= 1, "embtune::attention: offsets must be 1-D and non-empty");
  TORCH_CHECK(heads > 0 && qkv_in.size(1) % (3 * heads) == 0, "embtune::attention: qkv has ", qkv_in.size(1),
              " columns, not 3 × hidden with hidden a multiple of ", heads, " heads");
  const at::Tensor qkv = qkv_in.contiguous();
  const at::Tensor offsets = offsets_in.to(at::kLong).contiguous();
  const int64_t T = qkv.size(0), H = qkv.size(1) / 3, hd = H / heads, B = offsets.size(0) - 1;
  const int64_t* off = offsets.data_ptr<int64_t>();
  TORCH_CHECK(off[0] == 0 && off[B] == T, "embtune::attention: offsets run from ", off[0], " to ", off[B], ", not 0 to ", T);
  int64_t longest = 0;
  double work = 0;
  for (int64_t b = 0; b < B; b++) {
    const int64_t n = off[b + 1] - off[b];
    TORCH_CHECK(n >= 0, "embtune::attention: offsets decrease at ", b);
    longest = std::max(longest, n);
    work += static_cast<double>(n) * n;
  }
  work *= 2.0 * heads * hd;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  auto out = at::empty({T, H}, qkv.options());
  const Kernels* k = vector_kernels();
  if (hd != 32 || k == nullptr) {
    // The same maths with ATen, one sequence at a time.
    for (int64_t b = 0; b < B; b++) {
      const int64_t n = off[b + 1] - off[b];
      if (n == 0) continue;
      auto v = qkv.narrow(0, off[b], n).view({1, n, 3, heads, hd}).permute({2, 0, 3, 1, 4});
      out.narrow(0, off[b], n).copy_(at::scaled_dot_product_attention(v[0], v[1], v[2]).transpose(1, 2).reshape({n, H}));
    }
    return out;
  }
  const float* src = qkv.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const size_t scratch_size = k->att_scratch(static_cast<int>(longest));
  auto run = [&](int64_t u0, int64_t u1) {
    std::vector<float> scratch(scratch_size);
    for (int64_t u = u0; u < u1; u++) {
      const int64_t b = u / heads, h = u % heads, n = off[b + 1] - off[b];
      if (n == 0) continue;
      k->att_head32(src + off[b] * 3 * H, 3 * H, dst + off[b] * H, H, static_cast<int>(n), static_cast<int>(H),
                    static_cast<int>(h), scale, scratch.data());
    }
  };
  if (work < kSerialWork) {
    run(0, B * heads);
  } else {
    at::parallel_for(0, B * heads, 1, run);
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor> add_layer_norm(const at::Tensor& a_in, const at::Tensor& r_in, const at::Tensor& weight,
                                                  const at::Tensor& bias, double eps, const c10::optional<at::Tensor>& smooth) {
  need_float(a_in, "add_layer_norm", "a", 2);
  need_float(r_in, "add_layer_norm", "r", 2);
  TORCH_CHECK(a_in.sizes() == r_in.sizes(), "embtune::add_layer_norm: a is ", a_in.sizes(), " but r is ", r_in.sizes());
  const int64_t T = a_in.size(0), H = a_in.size(1);
  need_float(weight, "add_layer_norm", "weight", 1);
  need_float(bias, "add_layer_norm", "bias", 1);
  TORCH_CHECK(weight.size(0) == H && bias.size(0) == H, "embtune::add_layer_norm: weight and bias must have ", H, " elements");
  if (smooth.has_value()) {
    need_float(*smooth, "add_layer_norm", "smooth", 1);
    TORCH_CHECK(smooth->size(0) == H, "embtune::add_layer_norm: smooth must have ", H, " elements");
  }
  const Kernels* k = vector_kernels();
  if (H % 32 != 0 || k == nullptr) {
    auto x = at::layer_norm(a_in + r_in, {H}, weight, bias, eps);
    return {x, smooth.has_value() ? x * *smooth : x};
  }
  const at::Tensor a = a_in.contiguous(), r = r_in.contiguous(), w = weight.contiguous(), b = bias.contiguous();
  const at::Tensor sm = smooth.has_value() ? smooth->contiguous() : at::Tensor();
  auto x = at::empty({T, H}, a.options());
  auto xs = smooth.has_value() ? at::empty({T, H}, a.options()) : x;
  const float* smp = smooth.has_value() ? sm.data_ptr<float>() : nullptr;
  float* xsp = smooth.has_value() ? xs.data_ptr<float>() : nullptr;  // not x again: the kernel's pointers are __restrict
  auto run = [&](int64_t r0, int64_t r1) {
    k->add_ln_rows(a.data_ptr<float>(), r.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), smp, x.data_ptr<float>(), xsp,
                   r0, r1, static_cast<int>(H), static_cast<float>(eps));
  };
  if (T * H < kSerialElems) {
    run(0, T);
  } else {
    at::parallel_for(0, T, 16, run);
  }
  return {x, xs};
}

at::Tensor& gelu_(at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "embtune::gelu_: x must be a float32 CPU tensor");
  const Kernels* k = vector_kernels();
  if (!x.is_contiguous() || k == nullptr) {
    x.copy_(at::gelu(x));
    return x;
  }
  auto* span = k->gelu_span;
  float* p = x.data_ptr<float>();
  const int64_t n = x.numel();
  if (n < kSerialElems) {
    span(p, n);
  } else {
    at::parallel_for(0, n, kSerialElems / 2, [&](int64_t b, int64_t e) { span(p + b, e - b); });
  }
  // An in-place write through data_ptr: count it as x.copy_ would (inside
  // InferenceMode, where the encoder runs, inference tensors have no counter).
  x.unsafeGetTensorImpl()->bump_version();
  return x;
}

// row_scale(x, bounds): x [T, K] with each row divided by its largest
// magnitude r, then bounds [2, K] (rows of +1 and -1) appended; and r
// [T, 1]. In one pass, for minilm's per-token int8 activation scale: the
// appended rows pin quantized::linear_dynamic's range to [-1, 1] whatever
// the batch holds.
std::tuple<at::Tensor, at::Tensor> row_scale(const at::Tensor& x_in, const at::Tensor& bounds_in) {
  need_float(x_in, "row_scale", "x", 2);
  need_float(bounds_in, "row_scale", "bounds", 2);
  const int64_t T = x_in.size(0), K = x_in.size(1);
  TORCH_CHECK(bounds_in.size(0) == 2 && bounds_in.size(1) == K, "embtune::row_scale: bounds must be [2, ", K, "], not ",
              bounds_in.sizes());
  const at::Tensor x = x_in.contiguous(), bounds = bounds_in.contiguous();
  auto out = at::empty({T + 2, K}, x.options());
  auto r = at::empty({T, 1}, x.options());
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  float* rp = r.data_ptr<float>();
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const float* a = src + t * K;
      float* o = dst + t * K;
      float m = 0.f;
      for (int64_t k = 0; k < K; k++) m = std::max(m, std::fabs(a[k]));
      m = std::max(m, 1e-30f);
      rp[t] = m;
      for (int64_t k = 0; k < K; k++) o[k] = a[k] / m;
    }
  };
  if (T * K < kSerialElems) {
    run(0, T);
  } else {
    at::parallel_for(0, T, 16, run);
  }
  std::memcpy(dst + T * K, bounds.data_ptr<float>(), sizeof(float) * 2 * K);
  return {out, r};
}

}  // namespace

// ops.cpp holds the namespace's TORCH_LIBRARY; these join it.
TORCH_LIBRARY_FRAGMENT(embtune, m) {
  m.def("attention(Tensor qkv, Tensor offsets, int heads) -> Tensor", &attention);
  // Without smooth both results are the same tensor. The schema does not say
  // so; the encoder only reads them, and must not write either in place.
  m.def("add_layer_norm(Tensor a, Tensor r, Tensor weight, Tensor bias, float eps, Tensor? smooth) -> (Tensor, Tensor)",
        &add_layer_norm);
  m.def("gelu_(Tensor(a!) x) -> Tensor(a!)", &gelu_);
  m.def("row_scale(Tensor x, Tensor bounds) -> (Tensor, Tensor)", &row_scale);
}

#include "shim_internal.h"

// The kernel set the operators above run with now, as vector_kernels picks
// it: "avx512", "avx2" or "aten".
extern "C" char* et_encoder_ops_kernels(char** out) {
  ET_GUARD({
    et_internal::need(out, "out");
    const char* name = "aten";
#if EMBTUNE_VECTOR_KERNELS
    const Kernels* k = vector_kernels();
    if (k != nullptr) name = k->gelu_span == avx512::gelu_span ? "avx512" : "avx2";
#endif
    *out = et_internal::dup_message(name);
  })
}
