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
//   linear_int8(x, w, bias, reduce_range, gelu): a packed int8 Linear layer
//     with one activation scale per row (per token), the bias and
//     optionally GELU, through fbgemm's u8×s8 GEMM: quantizing, the GEMM and
//     the rescale run per block of rows, in parallel over the blocks.
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
#include <ATen/native/quantized/PackedParams.h>
#include <torch/custom_class.h>
#include <torch/library.h>

// The vector kernels need GCC's per-function targets and x86-64's
// intrinsics; elsewhere the operators run their ATen versions.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EMBTUNE_VECTOR_KERNELS 1
#include <immintrin.h>
// fbgemm's int8 GEMM (libtorch on x86-64 is built with it), for linear_int8.
#include <fbgemm/Fbgemm.h>
#include <fbgemm/QuantUtils.h>
#else
#define EMBTUNE_VECTOR_KERNELS 0
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <typeinfo>
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
  void (*scale_bias_rows)(float* y, long ld, const float* s, const float* b, long rows, int n, bool gelu);
};

// The kernels that run: AVX-512 where the CPU has it, else AVX2 with FMA;
// nullptr for the ATen versions (no such CPU, or EMBTUNE_ENCODER_OPS=aten).
// EMBTUNE_ENCODER_OPS=avx2 asks for the narrower ones. The variable is read
// on every call (a check, and a way out should a kernel misbehave on some CPU).
const Kernels* vector_kernels() {
#if EMBTUNE_VECTOR_KERNELS
  static const Kernels k256{avx2::att_scratch, avx2::att_head32, avx2::add_ln_rows, avx2::gelu_span, avx2::scale_bias_rows};
  static const Kernels k512{avx512::att_scratch, avx512::att_head32, avx512::add_ln_rows, avx512::gelu_span, avx512::scale_bias_rows};
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

// Per-token dynamic int8 (see linear_int8): row i is quantized with scale
// m_i / half, m_i its largest magnitude, and zero point half + 1, so that
// its values take [1, 2·half + 1] and ±m_i, the row's outlier, is exact.
// quantized::linear_dynamic's scale for a range [-m, m] is 2m / 255 with
// zero point 128: +m is clipped from 127.5 steps to 127 and -m rounds to
// -128 steps, half a step off on the one value that sets the scale, which
// in BERT-like encoders is the same outlier channel in every token.
// reduce_range keeps 7 bits (half 63), as quantized::linear_dynamic does.
struct RowQuant {
  int half, zero_point, precision;
  explicit RowQuant(bool reduce_range)
      : half(reduce_range ? 63 : 127), zero_point(reduce_range ? 64 : 128), precision(reduce_range ? 7 : 8) {}
};

// The largest magnitude of each row of x [T, K], at least 1e-30, as [T, 1].
at::Tensor row_magnitudes(const at::Tensor& x) {
  return x.abs().amax(1, /*keepdim=*/true).clamp_min(1e-30);
}

// linear_int8's ATen version, for an engine other than fbgemm (oneDNN's
// packed weights), EMBTUNE_ENCODER_OPS=aten or a CPU without the vector
// kernels: each row over its largest magnitude m, with rows of +1 and -1
// appended, which pin quantized::linear_dynamic's one range to [-1, 1]
// whatever the batch holds; the rows' products times m, plus the bias.
// Per token too, but with quantized::linear_dynamic's grid (RowQuant).
at::Tensor linear_int8_aten(const at::Tensor& x, LinearPackedParamsBase& w, const at::Tensor& bias, bool reduce_range, bool gelu) {
  const int64_t T = x.size(0), K = x.size(1);
  const at::Tensor m = row_magnitudes(x);
  const at::Tensor bounds = at::cat({at::ones({1, K}, x.options()), at::full({1, K}, -1.f, x.options())});
  const at::Tensor y = at::addcmul(bias, w.apply_dynamic(at::cat({x / m, bounds}), reduce_range).narrow(0, 0, T), m);
  return gelu ? at::gelu(y) : y;
}

#if EMBTUNE_VECTOR_KERNELS
// The data members of libtorch's PackedLinearWeight, the fbgemm engine's
// packed Linear weight (ATen/native/quantized/cpu/fbgemm_utils.h), in its
// order: that header includes asmjit's, which libtorch does not ship.
// fbgemm_weight returns w as one only where its dynamic type is
// PackedLinearWeight.
struct FbgemmLinearWeight : LinearPackedParamsBase {
  std::unique_ptr<fbgemm::PackBMatrix<int8_t>> w;
  std::optional<at::Tensor> bias_;
  std::vector<int32_t> col_offsets;
  std::vector<float> w_scale;
  std::vector<int32_t> w_zp;
  c10::QScheme q_scheme;
};

const FbgemmLinearWeight* fbgemm_weight(const LinearPackedParamsBase& w, int64_t K) {
  if (std::strcmp(typeid(w).name(), "18PackedLinearWeight") != 0) return nullptr;  // oneDNN's, fp16, ...
  const auto* f = static_cast<const FbgemmLinearWeight*>(&w);
  if (f->w == nullptr || f->w->numRows() != K) return nullptr;
  const size_t N = f->w->numCols();
  const size_t scales = f->q_scheme == c10::kPerTensorAffine ? 1 : f->q_scheme == c10::kPerChannelAffine ? N : 0;
  if (scales == 0 || f->w_scale.size() != scales || f->w_zp.size() != scales || f->col_offsets.size() != N) return nullptr;
  return f;
}

// Rows [r0, r1) of linear_int8 through fbgemm: each row quantized with its
// own scale, one u8×s8 GEMM with int32 accumulation whose output stage
// dequantizes by the weight's column scales, then one pass that multiplies
// each row by its activation scale and adds the bias (and GELU), while the
// rows are still in cache. A row's result depends on that row alone.
void linear_int8_rows(const Kernels& k, const float* x, int64_t K, const FbgemmLinearWeight& w, const float* bias, int64_t N,
                      RowQuant rq, bool gelu, int64_t r0, int64_t r1, float* y) {
  const int64_t rows = r1 - r0;
  std::vector<uint8_t> q(rows * K);
  std::vector<float> scale(rows);
  std::vector<int32_t> acc(rows * N);
  for (int64_t i = 0; i < rows; i++) {
    const float* xi = x + (r0 + i) * K;
    float lo = 0.f, hi = 0.f;
    fbgemm::FindMinMax(xi, &lo, &hi, K);
    const float m = std::max({-lo, hi, 1e-30f});
    const fbgemm::TensorQuantizationParams qp{m / rq.half, rq.zero_point, rq.precision};
    scale[i] = qp.scale;
    fbgemm::Quantize<uint8_t, /*LEGACY=*/false>(xi, q.data() + i * K, K, qp, 0, 1);
  }
  fbgemm::PackAWithRowOffset<uint8_t> a(fbgemm::matrix_op_t::NoTranspose, static_cast<uint32_t>(rows), static_cast<uint32_t>(K),
                                        q.data(), static_cast<uint32_t>(K), nullptr, 1, nullptr);
  fbgemm::DoNothing<float, float> done;
  float* out = y + r0 * N;
  if (w.q_scheme == c10::kPerTensorAffine) {
    fbgemm::ReQuantizeForFloat<false, fbgemm::QuantizationGranularity::TENSOR> dequant(
        done, 1.f, w.w_scale.data(), rq.zero_point, w.w_zp.data(), a.getRowOffsetBuffer(), w.col_offsets.data(), nullptr,
        static_cast<uint32_t>(N));
    fbgemm::fbgemmPacked(a, *w.w, out, acc.data(), static_cast<int32_t>(N), dequant, 0, 1);
  } else {
    fbgemm::ReQuantizeForFloat<false, fbgemm::QuantizationGranularity::OUT_CHANNEL> dequant(
        done, 1.f, w.w_scale.data(), rq.zero_point, w.w_zp.data(), a.getRowOffsetBuffer(), w.col_offsets.data(), nullptr,
        static_cast<uint32_t>(N));
    fbgemm::fbgemmPacked(a, *w.w, out, acc.data(), static_cast<int32_t>(N), dequant, 0, 1);
  }
  k.scale_bias_rows(out, N, scale.data(), bias, rows, static_cast<int>(N), gelu);
}
#endif

// linear_int8(x, w, bias, reduce_range, gelu): x [T, K] times the packed
// int8 weight w (quantized::linear_prepack, without its bias), plus bias
// [N], then GELU with gelu. Dynamic quantization with one activation scale
// per row (per token): quantized::linear_dynamic takes one scale over every
// row it is given, so a short text would be quantized by the range of its
// longest neighbour and its vector would depend on its batch. Here a row's
// result is the same alone and in any batch.
at::Tensor linear_int8(const at::Tensor& x_in, const c10::intrusive_ptr<LinearPackedParamsBase>& w, const at::Tensor& bias_in,
                       bool reduce_range, bool gelu) {
  need_float(x_in, "linear_int8", "x", 2);
  need_float(bias_in, "linear_int8", "bias", 1);
  TORCH_CHECK(w, "embtune::linear_int8: no packed weight");
  const at::Tensor x = x_in.contiguous(), bias = bias_in.contiguous();
  const int64_t T = x.size(0), K = x.size(1);
  const Kernels* k = vector_kernels();
#if EMBTUNE_VECTOR_KERNELS
  const FbgemmLinearWeight* fb = k != nullptr ? fbgemm_weight(*w, K) : nullptr;
  if (fb != nullptr) {
    const int64_t N = fb->w->numCols();
    TORCH_CHECK(bias.size(0) == N, "embtune::linear_int8: bias has ", bias.size(0), " elements, not ", N);
    auto y = at::empty({T, N}, x.options());
    if (T == 0) return y;
    const float* xp = x.data_ptr<float>();
    const float* bp = bias.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const RowQuant rq(reduce_range);
    // Blocks of at most 64 rows, so that a block's quantized rows, its int32
    // products and its output stay in cache for the rescale.
    constexpr int64_t kRows = 64;
    const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
    const int64_t per = std::min(kRows, std::max<int64_t>(1, (T + threads - 1) / threads));
    const int64_t blocks = (T + per - 1) / per;
    auto run = [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) {
        linear_int8_rows(*k, xp, K, *fb, bp, N, rq, gelu, b * per, std::min(T, (b + 1) * per), yp);
      }
    };
    if (static_cast<double>(T) * K * N < kSerialWork || blocks == 1) {
      run(0, blocks);
    } else {
      at::parallel_for(0, blocks, 1, run);
    }
    return y;
  }
#endif
  (void)k;
  return linear_int8_aten(x, *w, bias, reduce_range, gelu);
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
  m.def("linear_int8(Tensor x, __torch__.torch.classes.quantized.LinearPackedParamsBase w, Tensor bias, bool reduce_range, "
        "bool gelu) -> Tensor",
        &linear_int8);
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
