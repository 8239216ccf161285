package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// Module is a TorchScript module (torch::jit::Module).
type Module struct {
	h       C.et_module
	cleanup runtime.Cleanup
}

func newModule(h C.et_module) *Module {
	m := &Module{h: h}
	m.cleanup = runtime.AddCleanup(m, func(h C.et_module) {
		leaked.Add(1)
		C.et_module_free(h)
	}, h)
	return m
}

// NewModule creates an empty TorchScript module of the given class name,
// with a "training" attribute set to true.
func NewModule(name string) (*Module, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var h C.et_module
	if err := check(C.et_module_new(cn, &h), "new module"); err != nil {
		return nil, err
	}
	return newModule(h), nil
}

// LoadModule loads a TorchScript archive saved by torch.jit.save or Save,
// placing its tensors on device.
func LoadModule(path string, device Device) (*Module, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var h C.et_module
	if err := check(C.et_module_load(cp, C.int(device.Type), C.int(device.Index), &h), "load "+path); err != nil {
		return nil, err
	}
	return newModule(h), nil
}

// Close frees the module. Parameters obtained from it stay valid until closed.
func (m *Module) Close() {
	if m == nil || m.h == nil {
		return
	}
	m.cleanup.Stop()
	C.et_module_free(m.h)
	m.h = nil
}

func (m *Module) handle() (C.et_module, error) {
	if m == nil || m.h == nil {
		return nil, ErrClosed
	}
	return m.h, nil
}

// Save writes the module as a TorchScript archive that torch.jit.load reads.
// It writes path directly; callers wanting atomicity write to a temporary
// name and rename.
func (m *Module) Save(path string) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	return check(C.et_module_save(h, cp), "save "+path)
}

// RegisterParameter adds a copy of t as a parameter named name.
func (m *Module) RegisterParameter(name string, t *Tensor, requiresGrad bool) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	th, err := t.handle()
	if err != nil {
		return err
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return check(C.et_module_register_parameter(h, cn, th, cbool(requiresGrad)), "register parameter "+name)
}

// Define compiles TorchScript source into methods of the module. Besides
// the torch builtins, the source can call embtune's own operators:
//
//	embtune.dropout_mask(like, p)  a 0 or 1/(1-p) mask shaped like `like`,
//	                               drawn in parallel (see ops.cpp)
//
// A module that calls them cannot be saved for use elsewhere.
func (m *Module) Define(source string) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	cs := C.CString(source)
	defer C.free(unsafe.Pointer(cs))
	return check(C.et_module_define(h, cs), "define")
}

// Redefine returns a new module named name over m's parameter tensors
// (shared, not copied, so that gradients and optimizer steps on one are on
// the other), compiled from source, with m's training flag. m must have no
// submodules; it stays usable and is closed separately.
func (m *Module) Redefine(name, source string) (*Module, error) {
	h, err := m.handle()
	if err != nil {
		return nil, err
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	cs := C.CString(source)
	defer C.free(unsafe.Pointer(cs))
	var out C.et_module
	if err := check(C.et_module_redefine(h, cn, cs, &out), "redefine"); err != nil {
		return nil, err
	}
	return newModule(out), nil
}

// ScriptFloat spells a finite float as a TorchScript float literal, exactly,
// for source passed to Define.
func ScriptFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// maxOutputs bounds how many tensors a method may return.
const maxOutputs = 16

// Run calls a method with tensor arguments and returns its tensor results
// (one for a tensor, several for a tuple or list).
func (m *Module) Run(method string, inputs ...*Tensor) ([]*Tensor, error) {
	h, err := m.handle()
	if err != nil {
		return nil, err
	}
	hs, err := handles(inputs)
	if err != nil {
		return nil, err
	}
	var in *C.et_tensor
	if len(hs) > 0 {
		in = &hs[0]
	}
	cm := C.CString(method)
	defer C.free(unsafe.Pointer(cm))
	outs := make([]C.et_tensor, maxOutputs)
	var n C.int
	if err := check(C.et_module_run(h, cm, in, C.int(len(hs)), &outs[0], maxOutputs, &n), "run "+method); err != nil {
		return nil, err
	}
	res := make([]*Tensor, int(n))
	for i := range res {
		res[i] = newTensor(outs[i])
	}
	return res, nil
}

// Forward calls the module's forward method and returns its single tensor result.
func (m *Module) Forward(inputs ...*Tensor) (*Tensor, error) {
	outs, err := m.Run("forward", inputs...)
	if err != nil {
		return nil, err
	}
	if len(outs) != 1 {
		for _, o := range outs {
			o.Close()
		}
		return nil, fmt.Errorf("torch: forward returned %d tensors, want 1", len(outs))
	}
	return outs[0], nil
}

// NamedTensor is a parameter and its dotted name.
type NamedTensor struct {
	Name   string
	Tensor *Tensor
}

// NamedParameters returns references to the module's parameters, recursively,
// in registration order. The caller closes each tensor; they alias the
// module's storage, so in-place updates are visible to the module.
func (m *Module) NamedParameters() ([]NamedTensor, error) {
	h, err := m.handle()
	if err != nil {
		return nil, err
	}
	var names **C.char
	var tensors *C.et_tensor
	var n C.int
	if err := check(C.et_module_parameters(h, &names, &tensors, &n), "parameters"); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	defer C.free(unsafe.Pointer(names))
	defer C.free(unsafe.Pointer(tensors))
	ns := unsafe.Slice(names, int(n))
	ts := unsafe.Slice(tensors, int(n))
	out := make([]NamedTensor, int(n))
	for i := range out {
		out[i] = NamedTensor{Name: takeString(ns[i]), Tensor: newTensor(ts[i])}
	}
	return out, nil
}

// SetParameter copies value into the named parameter (same shape required).
func (m *Module) SetParameter(name string, value *Tensor) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	vh, err := value.handle()
	if err != nil {
		return err
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return check(C.et_module_set_parameter(h, cn, vh), "set parameter "+name)
}

// SetRequiresGrad sets requires_grad on every parameter. Parameters of a
// loaded module keep the flag they were saved with, so set it explicitly
// before training.
func (m *Module) SetRequiresGrad(on bool) error {
	params, err := m.NamedParameters()
	if err != nil {
		return err
	}
	defer closeNamed(params)
	for _, p := range params {
		if err := p.Tensor.SetRequiresGrad(on); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

func closeNamed(ps []NamedTensor) {
	for _, p := range ps {
		p.Tensor.Close()
	}
}

// Train switches the module (and submodules) between training and evaluation
// mode, which TorchScript code reads as self.training (dropout).
func (m *Module) Train(on bool) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	return check(C.et_module_train(h, cbool(on)), "train")
}

// IsTraining reports the module's training flag.
func (m *Module) IsTraining() (bool, error) {
	h, err := m.handle()
	if err != nil {
		return false, err
	}
	var on C.int
	err = check(C.et_module_is_training(h, &on), "is training")
	return on != 0, err
}

// To moves the module's parameters and buffers to device.
func (m *Module) To(device Device) error {
	h, err := m.handle()
	if err != nil {
		return err
	}
	return check(C.et_module_to(h, C.int(device.Type), C.int(device.Index)), "module to "+device.String())
}
