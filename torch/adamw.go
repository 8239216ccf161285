package torch

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// AdamWOptions are the optimizer-wide hyperparameters (torch.optim.AdamW).
type AdamWOptions struct {
	LR    float64
	Beta1 float64
	Beta2 float64
	Eps   float64
}

// DefaultAdamWOptions are torch.optim.AdamW's defaults with the learning rate
// sentence-transformers uses (2e-5).
func DefaultAdamWOptions() AdamWOptions {
	return AdamWOptions{LR: 2e-5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// AdamW is torch::optim::AdamW with parameter groups.
type AdamW struct {
	h       C.et_adamw
	cleanup runtime.Cleanup
	groups  int
}

// NewAdamW creates an optimizer with no parameter groups yet.
func NewAdamW(o AdamWOptions) (*AdamW, error) {
	var h C.et_adamw
	if err := check(C.et_adamw_new(C.double(o.LR), C.double(o.Beta1), C.double(o.Beta2), C.double(o.Eps), &h), "new adamw"); err != nil {
		return nil, err
	}
	a := &AdamW{h: h}
	a.cleanup = runtime.AddCleanup(a, func(h C.et_adamw) {
		leaked.Add(1)
		C.et_adamw_free(h)
	}, h)
	return a, nil
}

// Close frees the optimizer and its state.
func (a *AdamW) Close() {
	if a == nil || a.h == nil {
		return
	}
	a.cleanup.Stop()
	C.et_adamw_free(a.h)
	a.h = nil
}

func (a *AdamW) handle() (C.et_adamw, error) {
	if a == nil || a.h == nil {
		return nil, ErrClosed
	}
	return a.h, nil
}

// AddGroup adds parameters with their own learning rate and weight decay and
// returns the group's index.
func (a *AdamW) AddGroup(params []*Tensor, lr, weightDecay float64) (int, error) {
	h, err := a.handle()
	if err != nil {
		return 0, err
	}
	hs, err := handles(params)
	if err != nil {
		return 0, err
	}
	var p *C.et_tensor
	if len(hs) > 0 {
		p = &hs[0]
	}
	if err := check(C.et_adamw_add_group(h, p, C.int(len(hs)), C.double(lr), C.double(weightDecay)), "adamw add group"); err != nil {
		return 0, err
	}
	a.groups++
	return a.groups - 1, nil
}

// Groups returns the number of parameter groups.
func (a *AdamW) Groups() int { return a.groups }

// SetLR sets the learning rate of every group (the scheduler's job).
func (a *AdamW) SetLR(lr float64) error {
	h, err := a.handle()
	if err != nil {
		return err
	}
	for g := 0; g < a.groups; g++ {
		if err := check(C.et_adamw_set_lr(h, C.int(g), C.double(lr)), "adamw set lr"); err != nil {
			return err
		}
	}
	return nil
}

// ZeroGrad drops the gradients of every parameter (set to None).
func (a *AdamW) ZeroGrad() error {
	h, err := a.handle()
	if err != nil {
		return err
	}
	return check(C.et_adamw_zero_grad(h), "adamw zero grad")
}

// Step applies one update.
func (a *AdamW) Step() error {
	h, err := a.handle()
	if err != nil {
		return err
	}
	return check(C.et_adamw_step(h), "adamw step")
}

// Save writes the optimizer state (moments, step counts) to path.
func (a *AdamW) Save(path string) error {
	h, err := a.handle()
	if err != nil {
		return err
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	return check(C.et_adamw_save(h, cp), "adamw save")
}

// Load restores optimizer state saved by Save for the same parameter groups.
func (a *AdamW) Load(path string) error {
	h, err := a.handle()
	if err != nil {
		return err
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	return check(C.et_adamw_load(h, cp), "adamw load")
}
