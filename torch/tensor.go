package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// DType is a tensor element type, numbered as c10::ScalarType.
type DType int

// Element types the binding supports.
const (
	Uint8    DType = 0
	Int8     DType = 1
	Int16    DType = 2
	Int32    DType = 3
	Int64    DType = 4
	Float16  DType = 5
	Float32  DType = 6
	Float64  DType = 7
	Bool     DType = 11
	BFloat16 DType = 15
)

// Size returns the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Int16, Float16, BFloat16:
		return 2
	case Int32, Float32:
		return 4
	case Int64, Float64:
		return 8
	}
	return 0
}

func (d DType) String() string {
	switch d {
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int16:
		return "int16"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Float16:
		return "float16"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Bool:
		return "bool"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// DeviceType is numbered as c10::DeviceType.
type DeviceType int

// Device types.
const (
	CPUType  DeviceType = 0
	CUDAType DeviceType = 1
)

// Device is a device type and index.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: CPUType}

// CUDA returns the CUDA device with the given index.
func CUDA(index int) Device { return Device{Type: CUDAType, Index: index} }

func (d Device) String() string {
	if d.Type == CUDAType {
		return fmt.Sprintf("cuda:%d", d.Index)
	}
	return "cpu"
}

// ParseDevice reads "cpu", "cuda", "cuda:N" or "auto" (CUDA when a device is
// visible, else CPU).
func ParseDevice(s string) (Device, error) {
	switch s {
	case "", "auto":
		if CUDADeviceCount() > 0 {
			return CUDA(0), nil
		}
		return CPU, nil
	case "cpu":
		return CPU, nil
	case "cuda":
		s = "cuda:0"
	}
	var idx int
	if _, err := fmt.Sscanf(s, "cuda:%d", &idx); err != nil || idx < 0 {
		return Device{}, fmt.Errorf("torch: unknown device %q (want auto, cpu, cuda or cuda:N)", s)
	}
	if !CUDABuild {
		return Device{}, fmt.Errorf("torch: device %s requested: %w", s, ErrNoCUDABuild)
	}
	if n := CUDADeviceCount(); idx >= n {
		return Device{}, fmt.Errorf("torch: device %s requested but %d CUDA devices are visible (driver, CUDA_VISIBLE_DEVICES?)", s, n)
	}
	return CUDA(idx), nil
}

// Tensor is an owned reference to a libtorch tensor. Close releases it.
type Tensor struct {
	h       C.et_tensor
	cleanup runtime.Cleanup
}

func newTensor(h C.et_tensor) *Tensor {
	t := &Tensor{h: h}
	t.cleanup = runtime.AddCleanup(t, func(h C.et_tensor) {
		leaked.Add(1)
		C.et_tensor_free(h)
	}, h)
	return t
}

// Close frees the tensor. It is safe to call more than once.
func (t *Tensor) Close() {
	if t == nil || t.h == nil {
		return
	}
	t.cleanup.Stop()
	C.et_tensor_free(t.h)
	t.h = nil
}

func (t *Tensor) handle() (C.et_tensor, error) {
	if t == nil || t.h == nil {
		return nil, ErrClosed
	}
	return t.h, nil
}

func numel(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("torch: negative dimension in shape %v", shape)
		}
		n *= d
	}
	return n, nil
}

func cshape(shape []int64) (*C.int64_t, C.int) {
	if len(shape) == 0 {
		return nil, 0
	}
	return (*C.int64_t)(unsafe.Pointer(&shape[0])), C.int(len(shape))
}

// FromBytes copies raw little-endian element bytes into a new CPU tensor.
func FromBytes(data []byte, dtype DType, shape ...int64) (*Tensor, error) {
	n, err := numel(shape)
	if err != nil {
		return nil, err
	}
	if want := n * int64(dtype.Size()); want != int64(len(data)) || dtype.Size() == 0 {
		return nil, fmt.Errorf("torch: %d bytes for a %s tensor of shape %v (want %d)", len(data), dtype, shape, want)
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	sp, nd := cshape(shape)
	var h C.et_tensor
	if err := check(C.et_tensor_from_data(p, C.size_t(len(data)), sp, nd, C.int(dtype), &h), "tensor from data"); err != nil {
		return nil, err
	}
	runtime.KeepAlive(data)
	return newTensor(h), nil
}

func sliceBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(zero)))
}

// FromFloat32 copies data into a new float32 CPU tensor of the given shape.
func FromFloat32(data []float32, shape ...int64) (*Tensor, error) {
	return FromBytes(sliceBytes(data), Float32, shape...)
}

// FromInt64 copies data into a new int64 CPU tensor of the given shape.
func FromInt64(data []int64, shape ...int64) (*Tensor, error) {
	return FromBytes(sliceBytes(data), Int64, shape...)
}

// Zeros returns a zero-filled tensor.
func Zeros(dtype DType, device Device, shape ...int64) (*Tensor, error) {
	sp, nd := cshape(shape)
	var h C.et_tensor
	if err := check(C.et_tensor_zeros(sp, nd, C.int(dtype), C.int(device.Type), C.int(device.Index), &h), "zeros"); err != nil {
		return nil, err
	}
	return newTensor(h), nil
}

// Randn returns a CPU tensor of standard normal samples from libtorch's generator.
func Randn(dtype DType, shape ...int64) (*Tensor, error) {
	sp, nd := cshape(shape)
	var h C.et_tensor
	if err := check(C.et_tensor_randn(sp, nd, C.int(dtype), &h), "randn"); err != nil {
		return nil, err
	}
	return newTensor(h), nil
}

// Shape returns the tensor's dimensions.
func (t *Tensor) Shape() ([]int64, error) {
	h, err := t.handle()
	if err != nil {
		return nil, err
	}
	var nd C.int
	if err := check(C.et_tensor_ndim(h, &nd), "ndim"); err != nil {
		return nil, err
	}
	dims := make([]int64, int(nd))
	if nd == 0 {
		return dims, nil
	}
	err = check(C.et_tensor_shape(h, (*C.int64_t)(unsafe.Pointer(&dims[0])), nd), "shape")
	return dims, err
}

// DType returns the element type.
func (t *Tensor) DType() (DType, error) {
	h, err := t.handle()
	if err != nil {
		return 0, err
	}
	var st C.int
	err = check(C.et_tensor_scalar_type(h, &st), "scalar type")
	return DType(st), err
}

// Device returns where the tensor lives.
func (t *Tensor) Device() (Device, error) {
	h, err := t.handle()
	if err != nil {
		return Device{}, err
	}
	var dt, di C.int
	err = check(C.et_tensor_device(h, &dt, &di), "device")
	return Device{Type: DeviceType(dt), Index: int(di)}, err
}

// RequiresGrad reports whether autograd tracks the tensor.
func (t *Tensor) RequiresGrad() (bool, error) {
	h, err := t.handle()
	if err != nil {
		return false, err
	}
	var on C.int
	err = check(C.et_tensor_requires_grad(h, &on), "requires grad")
	return on != 0, err
}

// SetRequiresGrad switches autograd tracking for a leaf tensor.
func (t *Tensor) SetRequiresGrad(on bool) error {
	h, err := t.handle()
	if err != nil {
		return err
	}
	return check(C.et_tensor_set_requires_grad(h, cbool(on)), "set requires grad")
}

func (t *Tensor) readBytes(dst []byte, want DType) error {
	h, err := t.handle()
	if err != nil {
		return err
	}
	dt, err := t.DType()
	if err != nil {
		return err
	}
	if dt != want {
		return fmt.Errorf("torch: tensor is %s, not %s", dt, want)
	}
	var p unsafe.Pointer
	if len(dst) > 0 {
		p = unsafe.Pointer(&dst[0])
	}
	err = check(C.et_tensor_copy_to(h, p, C.size_t(len(dst))), "copy to host")
	runtime.KeepAlive(dst)
	return err
}

func (t *Tensor) count() (int, error) {
	shape, err := t.Shape()
	if err != nil {
		return 0, err
	}
	n, err := numel(shape)
	return int(n), err
}

// Float32s copies a float32 tensor's elements, in row-major order, to a new slice.
func (t *Tensor) Float32s() ([]float32, error) {
	n, err := t.count()
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	return out, t.readBytes(sliceBytes(out), Float32)
}

// Int64s copies an int64 tensor's elements to a new slice.
func (t *Tensor) Int64s() ([]int64, error) {
	n, err := t.count()
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	return out, t.readBytes(sliceBytes(out), Int64)
}

// Bytes copies the raw element bytes of a tensor of any dtype.
func (t *Tensor) Bytes() ([]byte, error) {
	n, err := t.count()
	if err != nil {
		return nil, err
	}
	dt, err := t.DType()
	if err != nil {
		return nil, err
	}
	out := make([]byte, n*dt.Size())
	return out, t.readBytes(out, dt)
}

// Item returns the value of a one-element tensor as float64.
func (t *Tensor) Item() (float64, error) {
	h, err := t.handle()
	if err != nil {
		return 0, err
	}
	var v C.double
	err = check(C.et_tensor_item_double(h, &v), "item")
	return float64(v), err
}

// To returns the tensor on device with element type dtype.
func (t *Tensor) To(device Device, dtype DType) (*Tensor, error) {
	return t.unaryCall("to", func(h C.et_tensor, out *C.et_tensor) *C.char {
		return C.et_tensor_to(h, C.int(device.Type), C.int(device.Index), C.int(dtype), out)
	})
}

// ToDevice moves the tensor to device, keeping its element type.
func (t *Tensor) ToDevice(device Device) (*Tensor, error) {
	return t.unaryCall("to device", func(h C.et_tensor, out *C.et_tensor) *C.char {
		return C.et_tensor_to(h, C.int(device.Type), C.int(device.Index), -1, out)
	})
}

// Ref returns a second owned reference to the same tensor storage.
func (t *Tensor) Ref() (*Tensor, error) {
	return t.unaryCall("shallow clone", func(h C.et_tensor, out *C.et_tensor) *C.char {
		return C.et_tensor_shallow_clone(h, out)
	})
}

// Detach returns a tensor sharing storage but cut from the autograd graph.
func (t *Tensor) Detach() (*Tensor, error) {
	return t.unaryCall("detach", func(h C.et_tensor, out *C.et_tensor) *C.char {
		return C.et_tensor_detach(h, out)
	})
}

// Backward runs autograd from a scalar tensor.
func (t *Tensor) Backward() error {
	h, err := t.handle()
	if err != nil {
		return err
	}
	return check(C.et_tensor_backward(h), "backward")
}

// Grad returns the accumulated gradient, or nil when there is none.
func (t *Tensor) Grad() (*Tensor, error) {
	h, err := t.handle()
	if err != nil {
		return nil, err
	}
	var g C.et_tensor
	if err := check(C.et_tensor_grad(h, &g), "grad"); err != nil {
		return nil, err
	}
	if g == nil {
		return nil, nil
	}
	return newTensor(g), nil
}

// CopyFrom overwrites t's elements with src's (same shape), without autograd.
func (t *Tensor) CopyFrom(src *Tensor) error {
	h, err := t.handle()
	if err != nil {
		return err
	}
	s, err := src.handle()
	if err != nil {
		return err
	}
	return check(C.et_tensor_copy_(h, s), "copy")
}

func (t *Tensor) unaryCall(what string, f func(C.et_tensor, *C.et_tensor) *C.char) (*Tensor, error) {
	h, err := t.handle()
	if err != nil {
		return nil, err
	}
	var out C.et_tensor
	if err := check(f(h, &out), what); err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// MatMul returns the matrix product t @ u.
func (t *Tensor) MatMul(u *Tensor) (*Tensor, error) {
	b, err := u.handle()
	if err != nil {
		return nil, err
	}
	return t.unaryCall("matmul", func(h C.et_tensor, out *C.et_tensor) *C.char {
		return C.et_tensor_matmul(h, b, out)
	})
}

// Cat0 concatenates t and u along the first axis.
func (t *Tensor) Cat0(u *Tensor) (*Tensor, error) { return Cat(0, t, u) }

// Cat concatenates tensors along dim (torch.cat).
func Cat(dim int64, ts ...*Tensor) (*Tensor, error) {
	hs, err := handles(ts)
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, errors.New("cat: no tensors")
	}
	var out C.et_tensor
	if err := check(C.et_tensor_cat(&hs[0], C.int(len(hs)), C.int64_t(dim), &out), "cat"); err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// MulScalar returns t * s.
func (t *Tensor) MulScalar(s float64) (*Tensor, error) {
	return t.unaryCall("mul", func(h C.et_tensor, out *C.et_tensor) *C.char {
		return C.et_tensor_mul_scalar(h, C.double(s), out)
	})
}

// MeanPool averages token embeddings [B, S, H] over an attention mask [B, S]
// in one libtorch call: sum(x*mask)/clamp(sum(mask), 1e-9), as
// sentence-transformers' Pooling(mode="mean"). With normalize it then divides
// by max(||x||, 1e-12), as its Normalize module.
func MeanPool(tokens, mask *Tensor, normalize bool) (*Tensor, error) {
	x, err := tokens.handle()
	if err != nil {
		return nil, err
	}
	m, err := mask.handle()
	if err != nil {
		return nil, err
	}
	var out C.et_tensor
	if err := check(C.et_mean_pool(x, m, cbool(normalize), &out), "mean pool"); err != nil {
		return nil, err
	}
	return newTensor(out), nil
}

// ClipGradNorm scales the gradients of params so that their joint 2-norm is
// at most maxNorm, and returns the norm before clipping
// (torch.nn.utils.clip_grad_norm_).
func ClipGradNorm(params []*Tensor, maxNorm float64) (float64, error) {
	hs, err := handles(params)
	if err != nil {
		return 0, err
	}
	var norm C.double
	var p *C.et_tensor
	if len(hs) > 0 {
		p = &hs[0]
	}
	err = check(C.et_clip_grad_norm(p, C.int(len(hs)), C.double(maxNorm), &norm), "clip grad norm")
	return float64(norm), err
}

func handles(ts []*Tensor) ([]C.et_tensor, error) {
	hs := make([]C.et_tensor, len(ts))
	for i, t := range ts {
		h, err := t.handle()
		if err != nil {
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		hs[i] = h
	}
	return hs, nil
}

// Narrow returns length elements of t along dim starting at start (a view).
func (t *Tensor) Narrow(dim, start, length int64) (*Tensor, error) {
	return t.unaryCall("narrow", func(h C.et_tensor, out *C.et_tensor) *C.char {
		return C.et_tensor_narrow(h, C.int64_t(dim), C.int64_t(start), C.int64_t(length), out)
	})
}

// Arange returns the int64 tensor [0, 1, …, n-1] on device.
func Arange(n int64, device Device) (*Tensor, error) {
	var h C.et_tensor
	if err := check(C.et_tensor_arange(C.int64_t(n), C.int(device.Type), C.int(device.Index), &h), "arange"); err != nil {
		return nil, err
	}
	return newTensor(h), nil
}
