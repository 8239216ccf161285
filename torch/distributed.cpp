// distributed.cpp binds c10d's TCPStore and ProcessGroupGloo (compiled into
// libtorch_cpu) for data-parallel training. The gloo headers come from
// Debian's libgloo-dev (tools/fetch-gloo.sh): the wheel ships none. Only
// c10d's classes are called here, never gloo directly, so the Debian headers
// matter only for the layout of the ProcessGroupGloo::Options they declare
// (its `devices` vector of gloo::transport::Device pointers).
#include "distributed.hpp"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <vector>

using embtune_dist::dup;

namespace {

void need(const void* p, const char* what) {
  if (p == nullptr) throw std::invalid_argument(std::string("nil ") + what);
}

std::chrono::milliseconds ms(int64_t v) {
  if (v <= 0) throw std::invalid_argument("timeout must be positive");
  return std::chrono::milliseconds(v);
}

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
  for (auto& w : works) w->wait();
}

}  // namespace

extern "C" {

char* et_store_new(const char* host, int port, int is_server, int64_t timeout_ms, et_store* out) {
  ET_DIST_GUARD({
    need(host, "host");
    need(out, "out");
    if (port <= 0 || port > 65535) throw std::invalid_argument("port out of range: " + std::to_string(port));
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    o.waitWorkers = false;
    o.timeout = ms(timeout_ms);
    auto s = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    *out = new et_store_s{s};
  })
}

char* et_store_clone(et_store s, et_store* out) {
  ET_DIST_GUARD({
    need(s, "store");
    need(out, "out");
    *out = new et_store_s{s->store->clone()};
  })
}

char* et_store_set(et_store s, const char* key, const void* data, size_t n) {
  ET_DIST_GUARD({
    need(s, "store");
    need(key, "key");
    if (n > 0) need(data, "data");
    const uint8_t* p = static_cast<const uint8_t*>(data);
    std::vector<uint8_t> v(p, p + n);
    s->store->set(std::string(key), v);
  })
}

char* et_store_get(et_store s, const char* key, void** data, size_t* n) {
  ET_DIST_GUARD({
    need(s, "store");
    need(key, "key");
    need(data, "data");
    need(n, "n");
    std::vector<uint8_t> v = s->store->get(std::string(key));
    void* buf = std::malloc(v.empty() ? 1 : v.size());
    if (buf == nullptr) throw std::bad_alloc();
    if (!v.empty()) std::memcpy(buf, v.data(), v.size());
    *data = buf;
    *n = v.size();
  })
}

char* et_store_add(et_store s, const char* key, int64_t delta, int64_t* out) {
  ET_DIST_GUARD({
    need(s, "store");
    need(key, "key");
    int64_t v = s->store->add(std::string(key), delta);
    if (out) *out = v;
  })
}

char* et_store_check(et_store s, const char** keys, int n, int* out) {
  ET_DIST_GUARD({
    need(s, "store");
    need(out, "out");
    if (n < 0 || (n > 0 && keys == nullptr)) throw std::invalid_argument("bad key list");
    std::vector<std::string> ks;
    for (int i = 0; i < n; i++) {
      need(keys[i], "key");
      ks.emplace_back(keys[i]);
    }
    *out = s->store->check(ks) ? 1 : 0;
  })
}

void et_store_free(et_store s) { delete s; }

char* et_pg_gloo_new(et_store s, int rank, int size, const char* host, const char* iface,
                     int64_t timeout_ms, et_pg* out) {
  ET_DIST_GUARD({
    need(s, "store");
    need(out, "out");
    if (size < 1 || rank < 0 || rank >= size) {
      throw std::invalid_argument("rank " + std::to_string(rank) + " outside world size " + std::to_string(size));
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(ms(timeout_ms));
    if (iface != nullptr && iface[0] != '\0') {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    } else {
      need(host, "host");
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
    }
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(s->store, rank, size, opts);
    *out = new et_pg_s{pg};
  })
}

char* et_pg_allreduce(et_pg pg, et_tensor t, int op) {
  ET_DIST_GUARD({
    need(pg, "process group");
    need(t, "tensor");
    c10d::AllreduceOptions o;
    switch (op) {
      case 0: o.reduceOp = c10d::ReduceOp::SUM; break;
      case 1: o.reduceOp = c10d::ReduceOp::MAX; break;
      default: throw std::invalid_argument("unknown reduce op " + std::to_string(op));
    }
    std::vector<at::Tensor> ts{t->t};
    pg->pg->allreduce(ts, o)->wait();
  })
}

char* et_pg_allreduce_grads(et_pg pg, et_tensor* params, int n, int64_t bucket_bytes,
                            int64_t* bytes, int* buckets) {
  ET_DIST_GUARD({
    need(pg, "process group");
    if (n < 0 || (n > 0 && params == nullptr)) throw std::invalid_argument("bad parameter list");
    if (bucket_bytes <= 0) throw std::invalid_argument("bucket size must be positive");
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> grads;
    grads.reserve(n);
    for (int i = 0; i < n; i++) {
      need(params[i], "parameter");
      at::Tensor& p = params[i]->t;
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      grads.push_back(p.grad());
    }
    // Buckets of consecutive gradients of one dtype and device, each up to
    // bucket_bytes (a gradient larger than that gets a bucket of its own).
    std::vector<std::vector<at::Tensor>> groups;
    int64_t cur = 0, total = 0;
    for (auto& g : grads) {
      int64_t b = g.numel() * static_cast<int64_t>(g.element_size());
      total += b;
      bool fresh = groups.empty() || cur + b > bucket_bytes ||
                   groups.back().front().scalar_type() != g.scalar_type() ||
                   groups.back().front().device() != g.device();
      if (fresh) {
        groups.emplace_back();
        cur = 0;
      }
      groups.back().push_back(g);
      cur += b;
    }
    std::vector<at::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    for (auto& grp : groups) {
      std::vector<at::Tensor> views;
      for (auto& g : grp) views.push_back(g.reshape({-1}));
      flats.push_back(at::cat(views));
      std::vector<at::Tensor> one{flats.back()};
      works.push_back(pg->pg->allreduce(one, o));
    }
    wait_all(works);
    const double inv = 1.0 / static_cast<double>(pg->pg->getSize());
    for (size_t k = 0; k < groups.size(); k++) {
      flats[k].mul_(inv);
      int64_t off = 0;
      for (auto& g : groups[k]) {
        g.copy_(flats[k].narrow(0, off, g.numel()).view(g.sizes()));
        off += g.numel();
      }
    }
    if (bytes) *bytes = total;
    if (buckets) *buckets = static_cast<int>(groups.size());
  })
}

char* et_pg_allgather(et_pg pg, et_tensor t, et_tensor* out) {
  ET_DIST_GUARD({
    need(pg, "process group");
    need(t, "tensor");
    need(out, "out");
    at::NoGradGuard no_grad;
    at::Tensor in = t->t.detach().contiguous();
    std::vector<at::Tensor> parts;
    for (int r = 0; r < pg->pg->getSize(); r++) parts.push_back(at::empty_like(in));
    std::vector<std::vector<at::Tensor>> outs{parts};
    std::vector<at::Tensor> ins{in};
    pg->pg->allgather(outs, ins)->wait();
    *out = new et_tensor_s{at::cat(outs[0], 0)};
  })
}

char* et_pg_barrier(et_pg pg) {
  ET_DIST_GUARD({
    need(pg, "process group");
    pg->pg->barrier()->wait();
  })
}

void et_pg_free(et_pg pg) { delete pg; }

}  // extern "C"
