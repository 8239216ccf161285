// encoder_kernels.h: the vector kernels of encoder_ops.cpp, written once
// against a handful of primitives (vf, W, vload, vfma, ...) that
// encoder_ops.cpp defines for AVX2 (8 lanes) and for AVX-512 (16 lanes)
// before including this file inside each target's namespace. No include
// guard: it is meant to be included once per instruction set.

constexpr int kHead = 32;  // the head size the vector kernels handle

// exp(x) for x ≤ 0 (softmax after subtracting the row maximum): Cody–Waite
// reduction by ln 2 and Cephes expf's degree-6 polynomial.
inline vf vexp_nonpos(vf x) {
  x = vmax(x, vset(-87.0f));
  const vf n = vfloor(vfma(x, vset(1.44269504088896341f), vset(0.5f)));
  vf r = vsub(x, vmul(n, vset(0.693359375f)));
  r = vfma(n, vset(2.12194440e-4f), r);
  vf p = vfma(r, vset(1.9875691500e-4f), vset(1.3981999507e-3f));
  p = vfma(p, r, vset(8.3334519073e-3f));
  p = vfma(p, r, vset(4.1665795894e-2f));
  p = vfma(p, r, vset(1.6666665459e-1f));
  p = vfma(p, r, vset(5.0000001201e-1f));
  p = vfma(vmul(p, r), r, vadd(r, vset(1.0f)));
  return vscale2(p, n);
}

// Scratch floats att_head32 needs for a sequence of up to n tokens.
inline size_t att_scratch(int n) {
  const int np = (n + W - 1) / W * W;
  return static_cast<size_t>(kHead + 4) * np;
}

// One head of one sequence of n tokens. Row t of qkv holds q, k and v of
// token t (at h*32, H + h*32 and 2H + h*32), rows ld apart; the result goes
// to out + t*ldo + h*32. scratch: att_scratch(n) floats.
void att_head32(const float* __restrict qkv, long ld, float* __restrict out, long ldo, int n, int H, int h, float scale,
                float* __restrict scratch) {
  constexpr int NV = kHead / W;  // vectors per row of a head
  const int np = (n + W - 1) / W * W;  // columns of kt and p
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
  const vf vscale = vset(scale);
  const vf ninf = vset(-INFINITY);
  for (int i0 = 0; i0 < n; i0 += 4) {
    const int rows = std::min(4, n - i0);
    const float* q[4];
    for (int r = 0; r < 4; r++) q[r] = Q + std::min(i0 + r, n - 1) * ld;  // past n: repeat the last row
    // Scores of 4 query rows against 2W, then W, keys at a time.
    int jb = 0;
    for (; jb + 2 * W <= np; jb += 2 * W) {
      vf a0 = vzero(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      for (int d = 0; d < kHead; d++) {
        const vf k0 = vload(kt + d * np + jb), k1 = vload(kt + d * np + jb + W);
        vf x = vbcast(q[0] + d);
        a0 = vfma(x, k0, a0), b0 = vfma(x, k1, b0);
        x = vbcast(q[1] + d);
        a1 = vfma(x, k0, a1), b1 = vfma(x, k1, b1);
        x = vbcast(q[2] + d);
        a2 = vfma(x, k0, a2), b2 = vfma(x, k1, b2);
        x = vbcast(q[3] + d);
        a3 = vfma(x, k0, a3), b3 = vfma(x, k1, b3);
      }
      vstore(p + jb, vmul(a0, vscale)), vstore(p + jb + W, vmul(b0, vscale));
      vstore(p + np + jb, vmul(a1, vscale)), vstore(p + np + jb + W, vmul(b1, vscale));
      vstore(p + 2 * np + jb, vmul(a2, vscale)), vstore(p + 2 * np + jb + W, vmul(b2, vscale));
      vstore(p + 3 * np + jb, vmul(a3, vscale)), vstore(p + 3 * np + jb + W, vmul(b3, vscale));
    }
    if (jb < np) {
      vf a0 = vzero(), a1 = a0, a2 = a0, a3 = a0;
      for (int d = 0; d < kHead; d++) {
        const vf k0 = vload(kt + d * np + jb);
        a0 = vfma(vbcast(q[0] + d), k0, a0);
        a1 = vfma(vbcast(q[1] + d), k0, a1);
        a2 = vfma(vbcast(q[2] + d), k0, a2);
        a3 = vfma(vbcast(q[3] + d), k0, a3);
      }
      vstore(p + jb, vmul(a0, vscale));
      vstore(p + np + jb, vmul(a1, vscale));
      vstore(p + 2 * np + jb, vmul(a2, vscale));
      vstore(p + 3 * np + jb, vmul(a3, vscale));
    }
    // Softmax numerators in place; 1/sum applied to the output.
    float inv[4];
    for (int r = 0; r < 4; r++) {
      float* pr = p + r * np;
      vf vm = ninf;
      for (int j = 0; j < np; j += W) vm = vmax(vm, vbelow_else(vload(pr + j), ninf, j, n));
      const vf mx = vset(vhmax(vm));
      vf sum = vzero();
      for (int j = 0; j < np; j += W) {
        const vf e = vbelow_else(vexp_nonpos(vsub(vload(pr + j), mx)), vzero(), j, n);
        sum = vadd(sum, e);
        vstore(pr + j, e);
      }
      inv[r] = 1.f / vhsum(sum);
    }
    // P V, two rows at a time.
    for (int r = 0; r < rows; r += 2) {
      const float* p0 = p + r * np;
      const float* p1 = p + (r + 1) * np;
      vf o[NV], u[NV];
#pragma GCC unroll 4
      for (int c = 0; c < NV; c++) o[c] = vzero(), u[c] = vzero();
      for (int j = 0; j < n; j++) {
        const float* vj = V + j * ld;
        const vf x = vbcast(p0 + j), y = vbcast(p1 + j);
#pragma GCC unroll 4
        for (int c = 0; c < NV; c++) {
          const vf v = vload(vj + c * W);
          o[c] = vfma(x, v, o[c]), u[c] = vfma(y, v, u[c]);
        }
      }
      float* d0 = out + (i0 + r) * ldo + h * kHead;
      const vf s0 = vset(inv[r]);
#pragma GCC unroll 4
      for (int c = 0; c < NV; c++) vstore(d0 + c * W, vmul(o[c], s0));
      if (r + 1 < rows) {
        float* d1 = d0 + ldo;
        const vf s1 = vset(inv[r + 1]);
#pragma GCC unroll 4
        for (int c = 0; c < NV; c++) vstore(d1 + c * W, vmul(u[c], s1));
      }
    }
  }
}

// Rows r0..r1 of x = LayerNorm(a + r) * w + b (mean, then the variance
// around it, as two passes in float32) and, with sm, xs = x * sm. H is a
// multiple of 2W.
void add_ln_rows(const float* __restrict a, const float* __restrict r, const float* __restrict w, const float* __restrict b,
                 const float* __restrict sm, float* __restrict x, float* __restrict xs, long r0, long r1, int H, float eps) {
  for (long i = r0; i < r1; i++) {
    const float* ai = a + i * H;
    const float* ri = r + i * H;
    float* xi = x + i * H;
    vf s0 = vzero(), s1 = s0;
    for (int j = 0; j < H; j += 2 * W) {
      const vf u = vadd(vload(ai + j), vload(ri + j)), v = vadd(vload(ai + j + W), vload(ri + j + W));
      vstore(xi + j, u), vstore(xi + j + W, v);
      s0 = vadd(s0, u), s1 = vadd(s1, v);
    }
    const vf mean = vset(vhsum(vadd(s0, s1)) / H);
    vf q0 = vzero(), q1 = q0;
    for (int j = 0; j < H; j += 2 * W) {
      const vf u = vsub(vload(xi + j), mean), v = vsub(vload(xi + j + W), mean);
      q0 = vfma(u, u, q0), q1 = vfma(v, v, q1);
    }
    const vf rstd = vset(1.f / std::sqrt(vhsum(vadd(q0, q1)) / H + eps));
    float* si = sm != nullptr ? xs + i * H : nullptr;
    for (int j = 0; j < H; j += W) {
      const vf v = vfma(vmul(vsub(vload(xi + j), mean), rstd), vload(w + j), vload(b + j));
      vstore(xi + j, v);
      if (si != nullptr) vstore(si + j, vmul(v, vload(sm + j)));
    }
  }
}

// 1 - erf(z) for z ≥ 0 as (1 + a1 z + … + a6 z⁶)^-16 (A&S 7.1.28).
constexpr float kErf[6] = {0.0705230784f, 0.0422820123f, 0.0092705272f, 0.0001520143f, 0.0002765672f, 0.0000430638f};

void gelu_span(float* __restrict p, long n) {
  const vf one = vset(1.f), two = vset(2.f), half = vset(0.5f), rsqrt2 = vset(0.70710678118654752f);
  long i = 0;
  for (; i + W <= n; i += W) {
    const vf x = vload(p + i);
    const vf z = vmul(vabs(x), rsqrt2);
    vf t = vfma(vset(kErf[5]), z, vset(kErf[4]));
    t = vfma(t, z, vset(kErf[3]));
    t = vfma(t, z, vset(kErf[2]));
    t = vfma(t, z, vset(kErf[1]));
    t = vfma(t, z, vset(kErf[0]));
    t = vfma(t, z, one);
    vf c = vdiv(one, t);  // c = 1 - erf(|x|/√2) after four squarings
    c = vmul(c, c), c = vmul(c, c), c = vmul(c, c), c = vmul(c, c);
    // 1 + erf(x/√2) is c for negative x and 2 - c otherwise.
    vstore(p + i, vmul(vmul(half, x), vsel_neg(x, c, vsub(two, c))));
  }
  for (; i < n; i++) {
    const float v = p[i];
    const float z = std::fabs(v) * 0.70710678118654752f;
    float t = kErf[5];
    for (int k = 4; k >= 0; k--) t = t * z + kErf[k];
    float c = 1.f / (t * z + 1.f);
    c *= c, c *= c, c *= c, c *= c;
    p[i] = 0.5f * v * (std::signbit(v) ? c : 2.f - c);
  }
}

// Rows [0, rows) of y, ld apart: y_i = y_i · s_i + b, the int8 GEMM's
// per-row activation scale and its bias, then GELU with gelu.
void scale_bias_rows(float* __restrict y, long ld, const float* __restrict s, const float* __restrict b, long rows, int n,
                     bool gelu) {
  for (long i = 0; i < rows; i++) {
    float* __restrict yi = y + i * ld;
    const vf si = vset(s[i]);
    int j = 0;
    for (; j + W <= n; j += W) vstore(yi + j, vfma(vload(yi + j), si, vload(b + j)));
    for (; j < n; j++) yi[j] = yi[j] * s[i] + b[j];
    if (gelu) gelu_span(yi, n);
  }
}
