// ops.cpp registers embtune's own TorchScript operators (namespace "embtune").
// TorchScript source compiled with Module.Define calls them as embtune.NAME
// (shim.cpp's resolver). A module that uses them can only be loaded where
// this library is linked, so exported archives must not (see minilm's export).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <stdexcept>

namespace {

// splitmix64's finaliser: a counter-based generator, so every element's draw
// depends only on (seed, index) and the mask is the same for any thread count.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// dropout_mask(like, p) returns a tensor shaped and typed like `like` whose
// elements are 0 with probability p and 1/(1-p) otherwise, so that
// `x * dropout_mask(x, p)` is inverted dropout (torch.dropout in training).
//
// Why not torch.dropout: on the CPU it draws every element from the default
// generator one at a time (bernoulli_), which measured 13-14% of a MiniLM
// training step on 2 cores for both libtorch and sentence-transformers. Here
// one 64-bit seed is drawn from the default generator per call (so
// torch.manual_seed and the saved RNG state still make runs repeatable and
// resumable), and the elements are hashed in parallel.
//
// The result has no autograd history: gradients flow through the multiply.
// Off the CPU it falls back to bernoulli_, which is fast there.
at::Tensor dropout_mask(const at::Tensor& like, double p) {
  if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument("dropout_mask: p must be in [0, 1)");
  at::NoGradGuard no_grad;
  auto opts = like.options().requires_grad(false);
  if (p == 0.0) return at::ones(like.sizes(), opts);
  if (!like.device().is_cpu()) return at::empty(like.sizes(), opts).bernoulli_(1.0 - p).div_(1.0 - p);

  uint64_t seed;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    seed = gen.get<at::CPUGeneratorImpl>()->random64();
  }
  // Keep an element when its 32-bit draw is >= p * 2^32.
  const uint64_t threshold = static_cast<uint64_t>(std::llround(p * 4294967296.0));
  auto out = at::empty(like.sizes(), opts.memory_format(at::MemoryFormat::Contiguous));
  const int64_t n = out.numel();
  const int64_t words = (n + 1) / 2;  // each 64-bit draw decides two elements
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, out.scalar_type(), "dropout_mask", [&] {
    const scalar_t keep = static_cast<scalar_t>(1.0 / (1.0 - p));
    const scalar_t drop = static_cast<scalar_t>(0);
    scalar_t* data = out.data_ptr<scalar_t>();
    at::parallel_for(0, words, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; w++) {
        const uint64_t h = mix64(seed + static_cast<uint64_t>(w + 1) * 0x9E3779B97F4A7C15ULL);
        const int64_t i = 2 * w;
        data[i] = (h & 0xFFFFFFFFULL) >= threshold ? keep : drop;
        if (i + 1 < n) data[i + 1] = (h >> 32) >= threshold ? keep : drop;
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(embtune, m) {
  m.def("dropout_mask(Tensor like, float p) -> Tensor", &dropout_mask);
}
