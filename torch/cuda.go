//go:build cuda

package torch

// Built with -tags cuda: link libtorch_cuda so its kernels register at load
// time. Only for a libtorch that ships it (the Python torch of a GPU box, or
// LIBTORCH pointing at a CUDA libtorch); the default build is CPU-only and
// needs no NVIDIA libraries.

/*
#cgo LDFLAGS: -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed
*/
import "C"
