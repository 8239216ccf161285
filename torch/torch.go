// Package torch is embtune's binding to libtorch: tensors, TorchScript
// modules and the AdamW optimizer, over a small C shim (shim.h).
//
// Every call returns an error instead of panicking; errors raised inside
// libtorch come back as Go errors carrying libtorch's message. Objects that
// own C++ memory have an idempotent Close. A cleanup registered with the
// runtime frees anything that was never closed and counts it (see Leaked),
// so tests can check that nothing relied on the garbage collector.
//
// libtorch keeps thread-local state (grad mode, inference mode, autocast) and
// an OpenMP thread team per calling OS thread. Run torch work on a Worker,
// which owns one locked OS thread, rather than from arbitrary goroutines.
//
// The shim's C++ is compiled with -fopenmp and linked to libtorch's own
// libgomp.so.1. at::parallel_for is an inline template: without OpenMP at
// compile time the shim's own loops (encoder_ops.cpp, dropout_mask) ran on
// one thread. Naming the library keeps one OpenMP runtime in the process,
// the one libtorch's kernels use.
package torch

/*
#cgo CXXFLAGS: -std=c++17 -O2 -fopenmp -I${SRCDIR}/../third_party/libtorch/include -I${SRCDIR}/../third_party/libtorch/include/torch/csrc/api/include
#cgo LDFLAGS: -L${SRCDIR}/../third_party/libtorch/lib -Wl,-rpath,${SRCDIR}/../third_party/libtorch/lib -Wl,--no-as-needed -ltorch_cpu -lc10 -l:libgomp.so.1 -Wl,--as-needed
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// leaked counts objects freed by a runtime cleanup instead of Close.
var leaked atomic.Int64

// Leaked reports how many tensors, modules or optimizers were reclaimed by
// the garbage collector because nobody closed them. It should stay zero.
func Leaked() int64 { return leaked.Load() }

// ErrNoCUDABuild is returned for CUDA work in a binary built without -tags cuda.
var ErrNoCUDABuild = errors.New("this binary was built without CUDA (go build -tags cuda; see README, GPU)")

// ErrClosed is returned when an object is used after Close.
var ErrClosed = errors.New("torch: use of closed object")

// check converts a shim error string into a Go error and frees it.
func check(msg *C.char, what string) error {
	if msg == nil {
		return nil
	}
	s := C.GoString(msg)
	C.free(unsafe.Pointer(msg))
	return fmt.Errorf("torch: %s: %s", what, s)
}

// takeString copies and frees a malloc'ed C string.
func takeString(s *C.char) string {
	if s == nil {
		return ""
	}
	out := C.GoString(s)
	C.free(unsafe.Pointer(s))
	return out
}

// Version returns the libtorch version this binary was built against.
func Version() (string, error) {
	var s *C.char
	if err := check(C.et_version(&s), "version"); err != nil {
		return "", err
	}
	return takeString(s), nil
}

// ShowConfig returns libtorch's build configuration (BLAS, OpenMP, CPU capability).
func ShowConfig() (string, error) {
	var s *C.char
	if err := check(C.et_show_config(&s), "show config"); err != nil {
		return "", err
	}
	return takeString(s), nil
}

// SetNumThreads sets libtorch's intra-op thread count.
func SetNumThreads(n int) error {
	return check(C.et_set_num_threads(C.int(n)), "set num threads")
}

// NumThreads returns libtorch's intra-op thread count.
func NumThreads() (int, error) {
	var n C.int
	err := check(C.et_get_num_threads(&n), "get num threads")
	return int(n), err
}

// ManualSeed seeds libtorch's global generators (dropout, randn).
func ManualSeed(seed uint64) error {
	return check(C.et_manual_seed(C.uint64_t(seed)), "manual seed")
}

// CUDADeviceCount returns how many CUDA devices libtorch sees; zero in a CPU build.
func CUDADeviceCount() int {
	var n C.int
	if err := check(C.et_cuda_device_count(&n), "cuda device count"); err != nil {
		return 0
	}
	return int(n)
}

// SetGradEnabled switches autograd recording on the calling OS thread and
// returns the previous setting. Call it from a Worker.
func SetGradEnabled(on bool) (bool, error) {
	var prev C.int
	err := check(C.et_set_grad_enabled(cbool(on), &prev), "set grad enabled")
	return prev != 0, err
}

// SetGraphExecutorOptimize switches TorchScript's optimizing executor. It
// must be off for CPU autocast to apply on every run (it is ignored after the
// first run otherwise).
func SetGraphExecutorOptimize(on bool) (bool, error) {
	var prev C.int
	err := check(C.et_set_graph_executor_optimize(cbool(on), &prev), "set graph executor optimize")
	return prev != 0, err
}

// SetAutocast enables or disables autocast to dtype on device's type, on the
// calling OS thread, and returns the previous state.
func SetAutocast(device Device, on bool, dtype DType) (bool, error) {
	var prev C.int
	err := check(C.et_autocast_set(C.int(device.Type), cbool(on), C.int(dtype), &prev), "set autocast")
	return prev != 0, err
}

// ClearAutocastCache drops the cached low-precision copies of weights. Call
// it after every optimizer step when training under autocast, or the cached
// copies go stale and training silently stops changing outputs.
func ClearAutocastCache() error {
	return check(C.et_autocast_clear_cache(), "clear autocast cache")
}

// InferenceMode runs fn with c10::InferenceMode on the calling OS thread. The
// caller must be on a locked OS thread (a Worker); tensors created inside
// cannot later be used by autograd.
func InferenceMode(fn func() error) error {
	var g C.et_guard
	if err := check(C.et_inference_mode_new(&g), "inference mode"); err != nil {
		return err
	}
	defer C.et_guard_free(g)
	return fn()
}

// NoGrad runs fn with autograd recording disabled on the calling OS thread.
func NoGrad(fn func() error) error {
	prev, err := SetGradEnabled(false)
	if err != nil {
		return err
	}
	defer SetGradEnabled(prev) //nolint:errcheck // restoring a flag cannot fail
	return fn()
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// RNGState returns a copy of the CPU generator's state (dropout, randn), so
// that a resumed training run draws the same random numbers.
func RNGState() ([]byte, error) { return DeviceRNGState(CPU) }

// SetRNGState restores a state returned by RNGState.
func SetRNGState(state []byte) error { return SetDeviceRNGState(CPU, state) }

// DeviceRNGState returns a copy of device's default generator state: the
// CPU's, or a CUDA device's, which draws dropout masks on the GPU.
func DeviceRNGState(device Device) ([]byte, error) {
	var h C.et_tensor
	if err := check(C.et_rng_get_state(C.int(device.Type), C.int(device.Index), &h), "rng state "+device.String()); err != nil {
		return nil, err
	}
	t := newTensor(h)
	defer t.Close()
	return t.Bytes()
}

// SetDeviceRNGState restores a state returned by DeviceRNGState for the same device.
func SetDeviceRNGState(device Device, state []byte) error {
	t, err := FromBytes(state, Uint8, int64(len(state)))
	if err != nil {
		return err
	}
	defer t.Close()
	return check(C.et_rng_set_state(C.int(device.Type), C.int(device.Index), t.h), "set rng state "+device.String())
}
