package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// QuantizedEngines lists the quantized engines compiled into libtorch, as
// torch.backends.quantized.supported_engines names them ("fbgemm", "onednn",
// "x86", "qnnpack").
func QuantizedEngines() ([]string, error) {
	var out *C.char
	if err := check(C.et_quantized_engines(&out), "quantized engines"); err != nil {
		return nil, err
	}
	s := takeString(out)
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, ","), nil
}

// QuantizedEngine is the engine quantized operators use now.
func QuantizedEngine() (string, error) {
	var out *C.char
	if err := check(C.et_quantized_engine(&out), "quantized engine"); err != nil {
		return "", err
	}
	return takeString(out), nil
}

// FbgemmISA is the instruction set of fbgemm's int8 kernels on this CPU, as
// fbgemm picks it (FBGEMM_ENABLE_INSTRUCTIONS can lower it): "avx512_vnni"
// or "avx512_vnni_ymm" accumulate u8×s8 products in int32, while "avx2" and
// "avx512" first add pairs of them in int16, which saturates for 8-bit
// activations (why torch.ao passes reduce_range=True on fbgemm).
func FbgemmISA() (string, error) {
	var out *C.char
	if err := check(C.et_fbgemm_isa(&out), "fbgemm instruction set"); err != nil {
		return "", err
	}
	return takeString(out), nil
}

// SetQuantizedEngine selects the engine that prepacks quantized weights
// (torch.backends.quantized.engine). It is process-wide; an engine this
// libtorch lacks is an error that names the ones it has.
func SetQuantizedEngine(name string) error {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return check(C.et_set_quantized_engine(cn), "set quantized engine")
}

// PackedLinear says how RegisterPackedLinear stores a Linear weight.
type PackedLinear int

const (
	// Int8PerChannel is symmetric int8 with one scale per output row, for
	// quantized.linear_dynamic (torch.ao's per_channel_dynamic_qconfig).
	Int8PerChannel PackedLinear = iota
	// Int8PerTensor is symmetric int8 with one scale for the whole weight
	// (torch.ao's default_dynamic_qconfig).
	Int8PerTensor
	// Float16Weights keeps fp16 weights, for quantized.linear_dynamic_fp16.
	Float16Weights
)

func (k PackedLinear) String() string {
	switch k {
	case Int8PerChannel:
		return "int8 per-channel"
	case Int8PerTensor:
		return "int8 per-tensor"
	case Float16Weights:
		return "fp16"
	}
	return fmt.Sprintf("PackedLinear(%d)", int(k))
}

// RegisterPackedLinear quantizes weight [out, in] as kind, prepacks it with
// bias [out] (nil for none) on the current quantized engine
// (quantized::linear_prepack or linear_prepack_fp16), and stores the packed
// object as the module attribute name. TorchScript reads it as self.name.
func (m *Module) RegisterPackedLinear(name string, weight, bias *Tensor, kind PackedLinear) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	w, err := weight.handle()
	if err != nil {
		return err
	}
	var b C.et_tensor
	if bias != nil {
		if b, err = bias.handle(); err != nil {
			return err
		}
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return check(C.et_module_register_linear_packed(h, cn, w, b, C.int(kind)), "pack "+name+" as "+kind.String())
}
