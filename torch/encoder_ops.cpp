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
//
// Why: at one short query the encoder is ~150 small operators whose
// dispatch, allocation and OpenMP fork cost as much as their arithmetic
// (README, "Single-query latency"). Small inputs run on the calling thread;
// large ones split with at::parallel_for, as ATen's own kernels do.
//
// The kernels use AVX2 and FMA (the level ATen's CPU kernels run at on the
// machines we measured). On a CPU without them, for a head size other than
// 32, or with EMBTUNE_ENCODER_OPS=aten, each operator computes the same
// thing with ATen operators.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

// The vector kernels run where the CPU has AVX2 and FMA, unless
// EMBTUNE_ENCODER_OPS=aten asks for the ATen versions (a check, and a way
// out should a kernel misbehave on some CPU).
bool vector_kernels() {
  static const bool cpu_ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  const char* force = std::getenv("EMBTUNE_ENCODER_OPS");
  return cpu_ok && !(force != nullptr && std::strcmp(force, "aten") == 0);
}

#pragma GCC push_options
#pragma GCC target("avx2,fma")

// exp(x) on 8 lanes for x ≤ 0 (softmax after subtracting the row maximum):
// Cody–Waite reduction by ln 2 and Cephes expf's degree-6 polynomial.
inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
  __m256 p = _mm256_fmadd_ps(r, _mm256_set1_ps(1.9875691500e-4f), _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// All-ones in the lanes j0 .. j0+7 that are below n.
inline __m256 lanes_below(int j0, int n) {
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - j0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

constexpr int kHead = 32;  // the head size the vector kernel handles

// Scratch floats att_head32 needs for a sequence of up to n tokens.
inline size_t att_scratch(int n) {
  const int np = (n + 7) / 8 * 8;
  return static_cast<size_t>(kHead + 4) * np;
}

// One head of one sequence of n tokens. Row t of qkv holds q, k and v of
// token t (at h*32, H + h*32 and 2H + h*32), rows ld apart; the result goes
// to out + t*ldo + h*32. scratch: att_scratch(n) floats.
void att_head32(const float* __restrict qkv, long ld, float* __restrict out, long ldo, int n, int H, int h, float scale,
                float* __restrict scratch) {
  const int np = (n + 7) / 8 * 8;  // columns of kt and p
  float* __restrict kt = scratch;  // Kᵀ, [32, np], zero past n
  float* __restrict p = scratch + kHead * np;  // 4 rows of scores, [4, np]
  const float* Q = qkv + h * kHead;
  const float* K = qkv + H + h * kHead;
  const float* V = qkv + 2 * H + h * kHead;
  for (int j = 0; j < n; j++) {
    const float* kj = K + j * ld;
    for (int d = 0; d < kHead; d++) kt[d * np + j] = kj[d];
  }
  for (int d = 0; d < kHead; d++)
    for (int j = n; j < np; j++) kt[d * np + j] = 0.f;
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int i0 = 0; i0 < n; i0 += 4) {
    const int rows = std::min(4, n - i0);
    const float* q[4];
    for (int r = 0; r < 4; r++) q[r] = Q + std::min(i0 + r, n - 1) * ld;  // past n: repeat the last row
    // Scores of 4 query rows against 16, then 8, keys at a time.
    int jb = 0;
    for (; jb + 16 <= np; jb += 16) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      for (int d = 0; d < kHead; d++) {
        const __m256 k0 = _mm256_loadu_ps(kt + d * np + jb), k1 = _mm256_loadu_ps(kt + d * np + jb + 8);
        __m256 x = _mm256_broadcast_ss(q[0] + d);
        a0 = _mm256_fmadd_ps(x, k0, a0), b0 = _mm256_fmadd_ps(x, k1, b0);
        x = _mm256_broadcast_ss(q[1] + d);
        a1 = _mm256_fmadd_ps(x, k0, a1), b1 = _mm256_fmadd_ps(x, k1, b1);
        x = _mm256_broadcast_ss(q[2] + d);
        a2 = _mm256_fmadd_ps(x, k0, a2), b2 = _mm256_fmadd_ps(x, k1, b2);
        x = _mm256_broadcast_ss(q[3] + d);
        a3 = _mm256_fmadd_ps(x, k0, a3), b3 = _mm256_fmadd_ps(x, k1, b3);
      }
      _mm256_storeu_ps(p + jb, _mm256_mul_ps(a0, vscale)), _mm256_storeu_ps(p + jb + 8, _mm256_mul_ps(b0, vscale));
      _mm256_storeu_ps(p + np + jb, _mm256_mul_ps(a1, vscale)), _mm256_storeu_ps(p + np + jb + 8, _mm256_mul_ps(b1, vscale));
      _mm256_storeu_ps(p + 2 * np + jb, _mm256_mul_ps(a2, vscale)), _mm256_storeu_ps(p + 2 * np + jb + 8, _mm256_mul_ps(b2, vscale));
      _mm256_storeu_ps(p + 3 * np + jb, _mm256_mul_ps(a3, vscale)), _mm256_storeu_ps(p + 3 * np + jb + 8, _mm256_mul_ps(b3, vscale));
    }
    if (jb < np) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int d = 0; d < kHead; d++) {
        const __m256 k0 = _mm256_loadu_ps(kt + d * np + jb);
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[0] + d), k0, a0);
        a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[1] + d), k0, a1);
        a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[2] + d), k0, a2);
        a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[3] + d), k0, a3);
      }
      _mm256_storeu_ps(p + jb, _mm256_mul_ps(a0, vscale));
      _mm256_storeu_ps(p + np + jb, _mm256_mul_ps(a1, vscale));
      _mm256_storeu_ps(p + 2 * np + jb, _mm256_mul_ps(a2, vscale));
      _mm256_storeu_ps(p + 3 * np + jb, _mm256_mul_ps(a3, vscale));
    }
    // Softmax numerators in place; 1/sum applied to the output.
    float inv[4];
    for (int r = 0; r < 4; r++) {
      float* pr = p + r * np;
      __m256 vm = ninf;
      for (int j = 0; j < np; j += 8) vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_loadu_ps(pr + j), lanes_below(j, n)));
      const __m256 mx = _mm256_set1_ps(hmax8(vm));
      __m256 sum = _mm256_setzero_ps();
      for (int j = 0; j < np; j += 8) {
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(pr + j), mx)), lanes_below(j, n));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(pr + j, e);
      }
      inv[r] = 1.f / hsum8(sum);
    }
    // P V, two rows at a time.
    for (int r = 0; r < rows; r += 2) {
      const float* p0 = p + r * np;
      const float* p1 = p + (r + 1) * np;
      __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0, u0 = o0, u1 = o0, u2 = o0, u3 = o0;
      for (int j = 0; j < n; j++) {
        const float* vj = V + j * ld;
        const __m256 v0 = _mm256_loadu_ps(vj), v1 = _mm256_loadu_ps(vj + 8), v2 = _mm256_loadu_ps(vj + 16), v3 = _mm256_loadu_ps(vj + 24);
        const __m256 x = _mm256_broadcast_ss(p0 + j), y = _mm256_broadcast_ss(p1 + j);
        o0 = _mm256_fmadd_ps(x, v0, o0), o1 = _mm256_fmadd_ps(x, v1, o1), o2 = _mm256_fmadd_ps(x, v2, o2), o3 = _mm256_fmadd_ps(x, v3, o3);
        u0 = _mm256_fmadd_ps(y, v0, u0), u1 = _mm256_fmadd_ps(y, v1, u1), u2 = _mm256_fmadd_ps(y, v2, u2), u3 = _mm256_fmadd_ps(y, v3, u3);
      }
      float* d0 = out + (i0 + r) * ldo + h * kHead;
      const __m256 s0 = _mm256_set1_ps(inv[r]);
      _mm256_storeu_ps(d0, _mm256_mul_ps(o0, s0)), _mm256_storeu_ps(d0 + 8, _mm256_mul_ps(o1, s0));
      _mm256_storeu_ps(d0 + 16, _mm256_mul_ps(o2, s0)), _mm256_storeu_ps(d0 + 24, _mm256_mul_ps(o3, s0));
      if (r + 1 < rows) {
        float* d1 = d0 + ldo;
        const __m256 s1 = _mm256_set1_ps(inv[r + 1]);
        _mm256_storeu_ps(d1, _mm256_mul_ps(u0, s1)), _mm256_storeu_ps(d1 + 8, _mm256_mul_ps(u1, s1));
        _mm256_storeu_ps(d1 + 16, _mm256_mul_ps(u2, s1)), _mm256_storeu_ps(d1 + 24, _mm256_mul_ps(u3, s1));
      }
    }
  }
}

// Rows r0..r1 of x = LayerNorm(a + r) * w + b (mean, then the variance
// around it, as two passes in float32) and, with sm, xs = x * sm. H is a
// multiple of 16.
void add_ln_rows(const float* __restrict a, const float* __restrict r, const float* __restrict w,
                 const float* __restrict b, const float* __restrict sm, float* __restrict x, float* __restrict xs, long r0,
                 long r1, int H, float eps) {
  for (long i = r0; i < r1; i++) {
    const float* ai = a + i * H;
    const float* ri = r + i * H;
    float* xi = x + i * H;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (int j = 0; j < H; j += 16) {
      const __m256 u = _mm256_add_ps(_mm256_loadu_ps(ai + j), _mm256_loadu_ps(ri + j));
      const __m256 v = _mm256_add_ps(_mm256_loadu_ps(ai + j + 8), _mm256_loadu_ps(ri + j + 8));
      _mm256_storeu_ps(xi + j, u), _mm256_storeu_ps(xi + j + 8, v);
      s0 = _mm256_add_ps(s0, u), s1 = _mm256_add_ps(s1, v);
    }
    const __m256 mean = _mm256_set1_ps(hsum8(_mm256_add_ps(s0, s1)) / H);
    __m256 q0 = _mm256_setzero_ps(), q1 = q0;
    for (int j = 0; j < H; j += 16) {
      const __m256 u = _mm256_sub_ps(_mm256_loadu_ps(xi + j), mean), v = _mm256_sub_ps(_mm256_loadu_ps(xi + j + 8), mean);
      q0 = _mm256_fmadd_ps(u, u, q0), q1 = _mm256_fmadd_ps(v, v, q1);
    }
    const __m256 rstd = _mm256_set1_ps(1.f / std::sqrt(hsum8(_mm256_add_ps(q0, q1)) / H + eps));
    float* si = sm != nullptr ? xs + i * H : nullptr;
    for (int j = 0; j < H; j += 8) {
      const __m256 v = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xi + j), mean), rstd), _mm256_loadu_ps(w + j),
                                       _mm256_loadu_ps(b + j));
      _mm256_storeu_ps(xi + j, v);
      if (si != nullptr) _mm256_storeu_ps(si + j, _mm256_mul_ps(v, _mm256_loadu_ps(sm + j)));
    }
  }
}

// 1 - erf(z) for z ≥ 0 as (1 + a1 z + … + a6 z⁶)^-16 (A&S 7.1.28).
constexpr float kErf[6] = {0.0705230784f, 0.0422820123f, 0.0092705272f, 0.0001520143f, 0.0002765672f, 0.0000430638f};

void gelu_span(float* __restrict p, long n) {
  const __m256 one = _mm256_set1_ps(1.f), two = _mm256_set1_ps(2.f), half = _mm256_set1_ps(0.5f);
  const __m256 rsqrt2 = _mm256_set1_ps(0.70710678118654752f);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(p + i);
    const __m256 z = _mm256_mul_ps(_mm256_and_ps(x, abs_mask), rsqrt2);
    __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(kErf[5]), z, _mm256_set1_ps(kErf[4]));
    t = _mm256_fmadd_ps(t, z, _mm256_set1_ps(kErf[3]));
    t = _mm256_fmadd_ps(t, z, _mm256_set1_ps(kErf[2]));
    t = _mm256_fmadd_ps(t, z, _mm256_set1_ps(kErf[1]));
    t = _mm256_fmadd_ps(t, z, _mm256_set1_ps(kErf[0]));
    t = _mm256_fmadd_ps(t, z, one);
    __m256 c = _mm256_div_ps(one, t);  // c = (1 - erf(|x|/√2)) after four squarings
    c = _mm256_mul_ps(c, c), c = _mm256_mul_ps(c, c), c = _mm256_mul_ps(c, c), c = _mm256_mul_ps(c, c);
    // 1 + erf(x/√2) is c for negative x and 2 - c otherwise; blendv reads x's sign bit.
    const __m256 f = _mm256_blendv_ps(_mm256_sub_ps(two, c), c, x);
    _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_mul_ps(half, x), f));
  }
  for (; i < n; i++) {
    const float x = p[i];
    const float z = std::fabs(x) * 0.70710678118654752f;
    float t = kErf[5];
    for (int k = 4; k >= 0; k--) t = t * z + kErf[k];
    float c = 1.f / (t * z + 1.f);
    c *= c, c *= c, c *= c, c *= c;
    p[i] = 0.5f * x * (x < 0 ? c : 2.f - c);
  }
}

#pragma GCC pop_options

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
  if (hd != kHead || !vector_kernels()) {
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
  auto run = [&](int64_t u0, int64_t u1) {
    std::vector<float> scratch(att_scratch(static_cast<int>(longest)));
    for (int64_t u = u0; u < u1; u++) {
      const int64_t b = u / heads, h = u % heads, n = off[b + 1] - off[b];
      if (n == 0) continue;
      att_head32(src + off[b] * 3 * H, 3 * H, dst + off[b] * H, H, static_cast<int>(n), static_cast<int>(H), static_cast<int>(h), scale,
                 scratch.data());
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
  if (H % 16 != 0 || !vector_kernels()) {
    auto x = at::layer_norm(a_in + r_in, {H}, weight, bias, eps);
    return {x, smooth.has_value() ? x * *smooth : x};
  }
  const at::Tensor a = a_in.contiguous(), r = r_in.contiguous(), w = weight.contiguous(), b = bias.contiguous();
  const at::Tensor sm = smooth.has_value() ? smooth->contiguous() : at::Tensor();
  auto x = at::empty({T, H}, a.options());
  auto xs = smooth.has_value() ? at::empty({T, H}, a.options()) : x;
  const float* smp = smooth.has_value() ? sm.data_ptr<float>() : nullptr;
  auto run = [&](int64_t r0, int64_t r1) {
    add_ln_rows(a.data_ptr<float>(), r.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), smp, x.data_ptr<float>(),
                xs.data_ptr<float>(), r0, r1, static_cast<int>(H), static_cast<float>(eps));
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
  if (!x.is_contiguous() || !vector_kernels()) {
    x.copy_(at::gelu(x));
    return x;
  }
  float* p = x.data_ptr<float>();
  const int64_t n = x.numel();
  if (n < kSerialElems) {
    gelu_span(p, n);
  } else {
    at::parallel_for(0, n, kSerialElems / 2, [&](int64_t b, int64_t e) { gelu_span(p + b, e - b); });
  }
  return x;
}

}  // namespace

// ops.cpp holds the namespace's TORCH_LIBRARY; these join it.
TORCH_LIBRARY_FRAGMENT(embtune, m) {
  m.def("attention(Tensor qkv, Tensor offsets, int heads) -> Tensor", &attention);
  m.def("add_layer_norm(Tensor a, Tensor r, Tensor weight, Tensor bias, float eps, Tensor? smooth) -> (Tensor, Tensor)",
        &add_layer_norm);
  m.def("gelu_(Tensor(a!) x) -> Tensor(a!)", &gelu_);
}
