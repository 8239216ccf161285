//go:build !cuda

package torch

// CUDABuild reports whether this binary was built with -tags cuda.
const CUDABuild = false

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

// CUDADeviceInfo describes CUDA device index; a CPU build has none.
func CUDADeviceInfo(int) (CUDADevice, error) { return CUDADevice{}, ErrNoCUDABuild }

// CUDAPeakAllocated returns the caching allocator's peak; a CPU build has none.
func CUDAPeakAllocated(int) (int64, error) { return 0, ErrNoCUDABuild }

// ResetCUDAPeak restarts CUDAPeakAllocated's count; a CPU build has none.
func ResetCUDAPeak(int) error { return ErrNoCUDABuild }
