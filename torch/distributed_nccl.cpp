// distributed_nccl.cpp: c10d's ProcessGroupNCCL, in libtorch_cuda. cgo
// compiles every .cpp of the package, so the NCCL code is behind
// EMBTUNE_NCCL, which only distributed_cuda.go (the `cuda` build tag)
// defines; the CPU build gets a stub that says how to get NCCL.
#include "distributed.hpp"

#ifdef EMBTUNE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

extern "C" {

char* et_pg_nccl_new(et_store s, int rank, int size, int64_t timeout_ms, et_pg* out) {
#ifdef EMBTUNE_NCCL
  ET_DIST_GUARD({
    if (s == nullptr || out == nullptr) throw std::invalid_argument("nil store or out");
    if (size < 1 || rank < 0 || rank >= size) {
      throw std::invalid_argument("rank " + std::to_string(rank) + " outside world size " + std::to_string(size));
    }
    if (timeout_ms <= 0) throw std::invalid_argument("timeout must be positive");
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(timeout_ms);
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(s->store, rank, size, opts);
    *out = new et_pg_s{pg};
  })
#else
  (void)s; (void)rank; (void)size; (void)timeout_ms; (void)out;
  return embtune_dist::dup("NCCL needs a build with -tags cuda against a CUDA libtorch");
#endif
}

}  // extern "C"
