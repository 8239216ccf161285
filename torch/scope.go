package torch

// Scope collects the temporaries of a unit of work (a training step, a
// batch) and frees them together, like database/sql's Rows.Close: explicit,
// idempotent and safe to defer.
//
//	s := torch.NewScope()
//	defer s.Close()
//	x := s.Keep(a.MatMul(b))
type Scope struct {
	tensors []*Tensor
	err     error
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// Keep registers t with the scope and returns it. It takes a (tensor, error)
// pair so op results can be wrapped directly; the first error is remembered
// and reported by Err, and a nil tensor is returned for it.
func (s *Scope) Keep(t *Tensor, err error) *Tensor {
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return nil
	}
	s.tensors = append(s.tensors, t)
	return t
}

// Add registers tensors created elsewhere.
func (s *Scope) Add(ts ...*Tensor) {
	s.tensors = append(s.tensors, ts...)
}

// Err returns the first error passed to Keep.
func (s *Scope) Err() error { return s.err }

// Release removes t from the scope so that Close does not free it; the
// caller now owns it.
func (s *Scope) Release(t *Tensor) *Tensor {
	for i, u := range s.tensors {
		if u == t {
			s.tensors = append(s.tensors[:i], s.tensors[i+1:]...)
			break
		}
	}
	return t
}

// Close frees every tensor still in the scope.
func (s *Scope) Close() {
	for _, t := range s.tensors {
		t.Close()
	}
	s.tensors = nil
}
