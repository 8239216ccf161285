package trainer

import (
	"fmt"

	"github.com/embtune/embtune/torch"
)

// GradCache (Gao et al. 2021), as sentence-transformers'
// CachedMultipleNegativesRankingLoss(mini_batch_size=…): a batch's
// in-batch negatives need every embedding at once, but activations only
// need one mini-batch at a time.
//
//  1. embedCached embeds the batch without a graph, one mini-batch at a
//     time (anchors, then each document column, as ST's columns), and
//     keeps the generator state before each mini-batch;
//  2. the loss runs over the whole batch on those embeddings (leaves that
//     require grad) and its backward stops at them: their gradients are
//     the cache;
//  3. backward re-embeds each mini-batch with a graph from its saved
//     generator state, so dropout draws the same masks, and backpropagates
//     the cached gradient into it through the surrogate ⟨e, ∂L/∂e⟩, whose
//     gradient with respect to e is ∂L/∂e.
//
// The weights' gradients sum over the mini-batches to what one pass over
// the batch gives. Memory holds the batch's embeddings and one
// mini-batch's activations; the price is a second forward pass.

// gradCacheSource is the surrogate ⟨e, g⟩, in float32 at least as ST's.
const gradCacheSource = `
def forward(self, e: Tensor, g: Tensor) -> Tensor:
    return (e.float() * g.float()).sum()
`

// cachedChunk is one mini-batch: its sequences, where its rows sit in
// the anchors (doc false) or documents, and the generator states its first
// pass started from.
type cachedChunk struct {
	seqs      [][]int64
	doc       bool
	row       int
	cpuRNG    []byte
	deviceRNG []byte
}

// gradCache is a batch embedded by the first pass: the anchor and document
// embeddings (leaves that require grad) and the mini-batches to replay.
type gradCache struct {
	r      *run
	chunks []cachedChunk
	a, d   *torch.Tensor
	// after is the generator state at the end of the first pass, restored
	// after the replay so the run continues as if each mini-batch ran once.
	after, afterDevice []byte
}

// chunkRows splits seqs into mini-batches of at most size rows.
func chunkRows(seqs [][]int64, size int, doc bool, row0 int) []cachedChunk {
	var out []cachedChunk
	for i := 0; i < len(seqs); i += size {
		out = append(out, cachedChunk{seqs: seqs[i:min(i+size, len(seqs))], doc: doc, row: row0 + i})
	}
	return out
}

// rngState reads the generators dropout draws from: the CPU's, and the
// device's on CUDA.
func (r *run) rngState() (cpu, device []byte, err error) {
	if cpu, err = torch.RNGState(); err != nil {
		return nil, nil, err
	}
	if dev := r.m.Device(); dev.Type == torch.CUDAType {
		if device, err = torch.DeviceRNGState(dev); err != nil {
			return nil, nil, err
		}
	}
	return cpu, device, nil
}

func (r *run) setRNGState(cpu, device []byte) error {
	if err := torch.SetRNGState(cpu); err != nil {
		return err
	}
	if device != nil {
		return torch.SetDeviceRNGState(r.m.Device(), device)
	}
	return nil
}

// embedCached is the first pass: it embeds anchors [n] and docs [k·n]
// (column by column) without a graph, in mini-batches of size rows, and
// returns their embeddings as leaves that require grad. Runs on the worker.
func (r *run) embedCached(s *torch.Scope, anchors, docs [][]int64, size int) (*gradCache, error) {
	c := &gradCache{r: r, chunks: chunkRows(anchors, size, false, 0)}
	n := len(anchors)
	for col := 0; col < len(docs); col += n {
		c.chunks = append(c.chunks, chunkRows(docs[col:col+n], size, true, col)...)
	}
	var as, ds []*torch.Tensor
	err := torch.NoGrad(func() error {
		for i := range c.chunks {
			ch := &c.chunks[i]
			var err error
			if ch.cpuRNG, ch.deviceRNG, err = r.rngState(); err != nil {
				return err
			}
			e := r.embed(s, ch.seqs)
			if err := s.Err(); err != nil {
				return err
			}
			if ch.doc {
				ds = append(ds, e)
			} else {
				as = append(as, e)
			}
		}
		var err error
		c.after, c.afterDevice, err = r.rngState()
		return err
	})
	if err != nil {
		return nil, err
	}
	if c.a = catRows(s, as); c.a == nil {
		return nil, s.Err()
	}
	if c.d = catRows(s, ds); c.d == nil {
		return nil, s.Err()
	}
	for _, t := range []*torch.Tensor{c.a, c.d} {
		if err := t.SetRequiresGrad(true); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// backward is the second pass, after the loss's backward filled the
// embeddings' gradients: each mini-batch is embedded again from its saved
// generator state and the cached gradient backpropagated into it. Runs on
// the worker; a nil cache (a plain step) does nothing.
func (c *gradCache) backward() error {
	if c == nil {
		return nil
	}
	r := c.r
	ga, err := c.a.Grad()
	if err != nil {
		return err
	}
	gd, err := c.d.Grad()
	if err != nil {
		return err
	}
	if ga == nil || gd == nil {
		return fmt.Errorf("gradcache: the loss left the anchor or document embeddings without a gradient")
	}
	defer ga.Close()
	defer gd.Close()
	for _, ch := range c.chunks {
		g := ga
		if ch.doc {
			g = gd
		}
		if err := c.replay(ch, g); err != nil {
			return err
		}
	}
	return r.setRNGState(c.after, c.afterDevice)
}

// replay re-embeds one mini-batch with a graph and backpropagates its rows
// of grad into the weights; the mini-batch's activations are freed when it
// returns.
func (c *gradCache) replay(ch cachedChunk, grad *torch.Tensor) error {
	r := c.r
	s := torch.NewScope()
	defer s.Close()
	if err := r.setRNGState(ch.cpuRNG, ch.deviceRNG); err != nil {
		return err
	}
	e := r.embed(s, ch.seqs)
	g := s.Keep(grad.Narrow(0, int64(ch.row), int64(len(ch.seqs))))
	if err := s.Err(); err != nil {
		return err
	}
	surrogate := s.Keep(r.surrogate.mod.Forward(e, g))
	if err := s.Err(); err != nil {
		return err
	}
	return surrogate.Backward()
}
