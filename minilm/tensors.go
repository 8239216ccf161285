package minilm

import (
	"fmt"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// torchDTypes maps the safetensors dtypes onto libtorch's.
var torchDTypes = map[hf.DType]torch.DType{
	hf.F32: torch.Float32, hf.F16: torch.Float16, hf.BF16: torch.BFloat16, hf.F64: torch.Float64,
	hf.I64: torch.Int64, hf.I32: torch.Int32, hf.I16: torch.Int16, hf.I8: torch.Int8,
	hf.U8: torch.Uint8, hf.Bool: torch.Bool,
}

// tensorOf makes a libtorch tensor of a stored tensor's bytes.
func tensorOf(raw hf.RawTensor) (*torch.Tensor, error) {
	dt, ok := torchDTypes[raw.DType]
	if !ok {
		return nil, fmt.Errorf("dtype %s has no libtorch type", raw.DType)
	}
	return torch.FromBytes(raw.Data, dt, raw.Shape...)
}
