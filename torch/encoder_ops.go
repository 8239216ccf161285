package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

// EncoderOpsKernels names the kernels that the fused encoder operators
// (encoder_ops.cpp: embtune.attention, add_layer_norm, gelu_) run with now:
// "avx512" or "avx2" where the CPU has them, "aten" for their ATen versions.
// EMBTUNE_ENCODER_OPS=avx2 or =aten asks for less; it is read on every call.
func EncoderOpsKernels() (string, error) {
	var s *C.char
	if err := check(C.et_encoder_ops_kernels(&s), "encoder ops kernels"); err != nil {
		return "", err
	}
	return takeString(s), nil
}
