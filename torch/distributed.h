// distributed.h is the C contract of embtune's c10d binding (distributed.cpp,
// distributed_nccl.cpp), under the same rules as shim.h: NULL or a malloc'ed
// error string from every call, no exception across the boundary, handles
// freed once with their *_free.
#ifndef EMBTUNE_TORCH_DISTRIBUTED_H
#define EMBTUNE_TORCH_DISTRIBUTED_H

#include "shim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_store_s* et_store;
typedef struct et_pg_s* et_pg;

// ---- c10d::TCPStore ----
// The server (is_server, rank 0) binds host:port; clients connect to it and
// retry until timeout_ms. No call waits for the other workers: rendezvous
// is done above with keys.
char* et_store_new(const char* host, int port, int is_server, int64_t timeout_ms, et_store* out);
// A second connection to the same store (TCPStore::clone), for another thread.
char* et_store_clone(et_store s, et_store* out);
char* et_store_set(et_store s, const char* key, const void* data, size_t n);
// Waits up to the store's timeout for key; *data is malloc'ed (free it).
char* et_store_get(et_store s, const char* key, void** data, size_t* n);
char* et_store_add(et_store s, const char* key, int64_t delta, int64_t* out);
// *out is 1 when every key exists, without waiting.
char* et_store_check(et_store s, const char** keys, int n, int* out);
void et_store_free(et_store s);

// ---- c10d process groups ----
// Gloo on the CPU. host is the address or name this rank is reached at
// (a device for createDeviceForHostname), or iface (GLOO_SOCKET_IFNAME) when
// not empty. timeout_ms bounds every collective.
char* et_pg_gloo_new(et_store s, int rank, int size, const char* host, const char* iface,
                     int64_t timeout_ms, et_pg* out);
// NCCL on CUDA (libtorch_cuda). Built only with `-tags cuda`; otherwise it
// returns an error saying so.
char* et_pg_nccl_new(et_store s, int rank, int size, int64_t timeout_ms, et_pg* out);
// Sums (op 0) or takes the maximum (op 1) of t across ranks, in place.
char* et_pg_allreduce(et_pg pg, et_tensor t, int op);
// Averages the gradients of params across ranks, in place, in buckets of at
// most bucket_bytes (as DistributedDataParallel's bucket_cap_mb): each bucket
// is the gradients flattened into one tensor, all buckets are in flight at
// once, then copied back. A parameter without a gradient takes part as
// zeros. *bytes receives the payload size; *buckets the bucket count.
char* et_pg_allreduce_grads(et_pg pg, et_tensor* params, int n, int64_t bucket_bytes,
                            int64_t* bytes, int* buckets);
// Concatenates every rank's t (same shape on all ranks) along dim 0, in
// rank order. The result has no autograd history.
char* et_pg_allgather(et_pg pg, et_tensor t, et_tensor* out);
char* et_pg_barrier(et_pg pg);
void et_pg_free(et_pg pg);

#ifdef __cplusplus
}
#endif

#endif
