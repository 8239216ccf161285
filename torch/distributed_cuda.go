//go:build cuda

package torch

// With -tags cuda, distributed_nccl.cpp compiles ProcessGroupNCCL. Its
// headers need nccl.h and the CUDA toolkit headers: a GPU box has them
// (CUDA_HOME/include, or pass CGO_CXXFLAGS); tools/fetch-nccl.sh unpacks
// the matching wheels' headers into third_party/nccl/include.

/*
#cgo CXXFLAGS: -DEMBTUNE_NCCL -DUSE_C10D_NCCL -I${SRCDIR}/../third_party/nccl/include
*/
import "C"
