package torch

// c10d, PyTorch's distributed engine, as compiled into libtorch_cpu (Gloo)
// and libtorch_cuda (NCCL): a TCPStore for rendezvous and small shared
// values, and a process group for collectives. Rendezvous, rank naming and
// launching live in package distributed; this file is the raw binding.

/*
#cgo CXXFLAGS: -DUSE_C10D_GLOO -I${SRCDIR}/../third_party/gloo/include
#include <stdlib.h>
#include "distributed.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// Store is a c10d::TCPStore connection: a key-value store served by rank 0.
// Its methods are safe from any goroutine (TCPStore serialises its own
// requests); use Clone for a second connection that a blocking Get cannot hold up.
type Store struct {
	h       C.et_store
	cleanup runtime.Cleanup
}

// NewTCPStore connects to the store at host:port; with server set it also
// binds and serves it (rank 0). Connecting retries until timeout. It does
// not wait for the other workers.
func NewTCPStore(host string, port int, server bool, timeout time.Duration) (*Store, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var h C.et_store
	if err := check(C.et_store_new(ch, C.int(port), cbool(server), C.int64_t(timeout.Milliseconds()), &h), "tcp store"); err != nil {
		return nil, err
	}
	return newStore(h), nil
}

func newStore(h C.et_store) *Store {
	s := &Store{h: h}
	s.cleanup = runtime.AddCleanup(s, func(h C.et_store) {
		leaked.Add(1)
		C.et_store_free(h)
	}, h)
	return s
}

// Clone opens another connection to the same store.
func (s *Store) Clone() (*Store, error) {
	if s == nil || s.h == nil {
		return nil, ErrClosed
	}
	var h C.et_store
	if err := check(C.et_store_clone(s.h, &h), "store clone"); err != nil {
		return nil, err
	}
	return newStore(h), nil
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	if s == nil || s.h == nil {
		return ErrClosed
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	return check(C.et_store_set(s.h, ck, p, C.size_t(len(value))), "store set "+key)
}

// Get waits for key up to the store's timeout and returns its value.
func (s *Store) Get(key string) ([]byte, error) {
	if s == nil || s.h == nil {
		return nil, ErrClosed
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	var n C.size_t
	if err := check(C.et_store_get(s.h, ck, &p, &n), "store get "+key); err != nil {
		return nil, err
	}
	defer C.free(p)
	return C.GoBytes(p, C.int(n)), nil
}

// Add adds delta to the integer under key (0 if absent) and returns the sum.
func (s *Store) Add(key string, delta int64) (int64, error) {
	if s == nil || s.h == nil {
		return 0, ErrClosed
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.int64_t
	err := check(C.et_store_add(s.h, ck, C.int64_t(delta), &out), "store add "+key)
	return int64(out), err
}

// Has reports, without waiting, whether every key exists.
func (s *Store) Has(keys ...string) (bool, error) {
	if s == nil || s.h == nil {
		return false, ErrClosed
	}
	cs := make([]*C.char, len(keys))
	for i, k := range keys {
		cs[i] = C.CString(k)
		defer C.free(unsafe.Pointer(cs[i]))
	}
	// The array of C string pointers must live in C memory: cgo forbids
	// Go memory holding Go pointers, and these point to C memory, but a C
	// array keeps the rule obvious.
	arr := (**C.char)(C.malloc(C.size_t(len(keys)+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	sl := unsafe.Slice(arr, len(keys)+1)
	copy(sl, cs)
	var out C.int
	err := check(C.et_store_check(s.h, arr, C.int(len(keys)), &out), "store check")
	return out != 0, err
}

// Close frees the connection (the server stops with rank 0's last one).
func (s *Store) Close() {
	if s == nil || s.h == nil {
		return
	}
	s.cleanup.Stop()
	C.et_store_free(s.h)
	s.h = nil
}

// ReduceOp is a reduction for AllReduce.
type ReduceOp int

const (
	ReduceSum ReduceOp = 0
	ReduceMax ReduceOp = 1
)

// ProcessGroup is a c10d backend (ProcessGroupGloo or ProcessGroupNCCL) of
// a fixed set of ranks. Every rank must issue the same collectives in the
// same order; each call blocks until its collective is done or fails.
type ProcessGroup struct {
	h       C.et_pg
	cleanup runtime.Cleanup
	Rank    int
	Size    int
}

// NewGlooGroup makes a Gloo process group over the store. host is the
// address other ranks reach this one at; iface (GLOO_SOCKET_IFNAME), when
// not empty, names a network interface instead. timeout bounds every
// collective, the connection to the other ranks included.
func NewGlooGroup(s *Store, rank, size int, host, iface string, timeout time.Duration) (*ProcessGroup, error) {
	if s == nil || s.h == nil {
		return nil, ErrClosed
	}
	chost, ciface := C.CString(host), C.CString(iface)
	defer C.free(unsafe.Pointer(chost))
	defer C.free(unsafe.Pointer(ciface))
	var h C.et_pg
	if err := check(C.et_pg_gloo_new(s.h, C.int(rank), C.int(size), chost, ciface, C.int64_t(timeout.Milliseconds()), &h), "gloo process group"); err != nil {
		return nil, err
	}
	return newGroup(h, rank, size), nil
}

// NewNCCLGroup makes an NCCL process group (CUDA builds only: -tags cuda).
// The calling thread's current CUDA device must be this rank's.
func NewNCCLGroup(s *Store, rank, size int, timeout time.Duration) (*ProcessGroup, error) {
	if s == nil || s.h == nil {
		return nil, ErrClosed
	}
	var h C.et_pg
	if err := check(C.et_pg_nccl_new(s.h, C.int(rank), C.int(size), C.int64_t(timeout.Milliseconds()), &h), "nccl process group"); err != nil {
		return nil, err
	}
	return newGroup(h, rank, size), nil
}

func newGroup(h C.et_pg, rank, size int) *ProcessGroup {
	g := &ProcessGroup{h: h, Rank: rank, Size: size}
	g.cleanup = runtime.AddCleanup(g, func(h C.et_pg) {
		leaked.Add(1)
		C.et_pg_free(h)
	}, h)
	return g
}

func (g *ProcessGroup) handle() (C.et_pg, error) {
	if g == nil || g.h == nil {
		return nil, ErrClosed
	}
	return g.h, nil
}

// AllReduce reduces t across ranks in place.
func (g *ProcessGroup) AllReduce(t *Tensor, op ReduceOp) error {
	h, err := g.handle()
	if err != nil {
		return err
	}
	th, err := t.handle()
	if err != nil {
		return err
	}
	return check(C.et_pg_allreduce(h, th, C.int(op)), "all-reduce")
}

// AllReduceGrads averages the parameters' gradients across ranks in
// buckets of at most bucketBytes, and returns the bytes reduced and the
// number of buckets.
func (g *ProcessGroup) AllReduceGrads(params []*Tensor, bucketBytes int64) (bytes int64, buckets int, err error) {
	h, err := g.handle()
	if err != nil {
		return 0, 0, err
	}
	hs, err := handles(params)
	if err != nil {
		return 0, 0, err
	}
	var p *C.et_tensor
	if len(hs) > 0 {
		p = &hs[0]
	}
	var nb C.int64_t
	var nk C.int
	err = check(C.et_pg_allreduce_grads(h, p, C.int(len(hs)), C.int64_t(bucketBytes), &nb, &nk), "all-reduce gradients")
	return int64(nb), int(nk), err
}

// AllGather concatenates every rank's t along dimension 0, in rank order.
// The result carries no gradient.
func (g *ProcessGroup) AllGather(t *Tensor) (*Tensor, error) {
	h, err := g.handle()
	if err != nil {
		return nil, err
	}
	th, err := t.handle()
	if err != nil {
		return nil, err
	}
	var out C.et_tensor
	if err := check(C.et_pg_allgather(h, th, &out), "all-gather"); err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// Barrier waits until every rank has reached it.
func (g *ProcessGroup) Barrier() error {
	h, err := g.handle()
	if err != nil {
		return err
	}
	return check(C.et_pg_barrier(h), "barrier")
}

// Close frees the process group.
func (g *ProcessGroup) Close() {
	if g == nil || g.h == nil {
		return
	}
	g.cleanup.Stop()
	C.et_pg_free(g.h)
	g.h = nil
}

func (g *ProcessGroup) String() string { return fmt.Sprintf("rank %d of %d", g.Rank, g.Size) }
