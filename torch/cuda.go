//go:build cuda

package torch

// Built with -tags cuda: link libtorch_cuda so its kernels register at load
// time. Only for a libtorch that ships it (the Python torch of a GPU box,
// LIBTORCH pointing at a CUDA libtorch, or third_party/libtorch-cuda from
// tools/fetch-libtorch-cuda.sh); the default build is CPU-only and needs no
// NVIDIA libraries. cuda.cpp needs the CUDA runtime headers, which
// tools/libtorch-env.sh adds to CGO_CXXFLAGS with EMBTUNE_CUDA=1.

/*
#cgo LDFLAGS: -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -l:libcudart.so.13 -Wl,--as-needed
#include <stdlib.h>
#include "cuda_shim.h"
*/
import "C"

import "strconv"

// CUDABuild reports whether this binary was built with -tags cuda.
const CUDABuild = true

// CUDADevice describes one CUDA device.
type CUDADevice struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	Capability  string `json:"compute_capability"`
	TotalMemory int64  `json:"total_memory_bytes"`
	FreeMemory  int64  `json:"free_memory_bytes"`
	RuntimeCUDA string `json:"cuda_runtime"`
	DriverCUDA  string `json:"cuda_driver"`
}

// CUDADeviceInfo describes CUDA device index.
func CUDADeviceInfo(index int) (CUDADevice, error) {
	var name *C.char
	var major, minor C.int
	var total, free C.int64_t
	if err := check(C.et_cuda_device_info(C.int(index), &name, &major, &minor, &total, &free), "cuda device info"); err != nil {
		return CUDADevice{}, err
	}
	d := CUDADevice{Index: index, Name: takeString(name), Capability: strconv.Itoa(int(major)) + "." + strconv.Itoa(int(minor)),
		TotalMemory: int64(total), FreeMemory: int64(free)}
	var rt, drv C.int
	if err := check(C.et_cuda_versions(&rt, &drv), "cuda versions"); err != nil {
		return d, err
	}
	d.RuntimeCUDA, d.DriverCUDA = cudaVersion(int(rt)), cudaVersion(int(drv))
	return d, nil
}

// CUDAPeakAllocated returns the peak bytes PyTorch's caching allocator held
// on device index since the last ResetCUDAPeak.
func CUDAPeakAllocated(index int) (int64, error) {
	var n C.int64_t
	err := check(C.et_cuda_peak_allocated(C.int(index), &n), "cuda peak allocated")
	return int64(n), err
}

// ResetCUDAPeak restarts CUDAPeakAllocated's count.
func ResetCUDAPeak(index int) error {
	return check(C.et_cuda_reset_peak(C.int(index)), "cuda reset peak")
}

// cudaVersion formats CUDA's 1000*major + 10*minor encoding as "13.0".
func cudaVersion(v int) string {
	return strconv.Itoa(v/1000) + "." + strconv.Itoa(v%1000/10)
}
