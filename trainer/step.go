package trainer

import (
	"context"

	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// One optimizer step is three parts, each with its variants:
//
//   - embed the batch (embedPairs): in one pass with autograd on, or, with
//     --mini-batch-size, cached (gradcache.go), which replays the
//     mini-batches after the loss's backward;
//   - the loss and its backward: over this process's pairs (step), or per
//     rank, over its shard or the gathered global batch (stepShard);
//   - synchronise the gradients across ranks (sharded only), clip and update
//     (clipAndStep).

// batchTexts returns the token ids of the batch's anchors and of its
// documents, column by column (positives, then each hard-negative column).
func (r *run) batchTexts(batch []int) (anchors, docs [][]int64) {
	anchors = make([][]int64, len(batch))
	docs = make([][]int64, 0, len(batch)*len(r.docIDs))
	for i, idx := range batch {
		anchors[i] = r.anchorIDs[idx]
	}
	for _, col := range r.docIDs {
		for _, idx := range batch {
			docs = append(docs, col[idx])
		}
	}
	return anchors, docs
}

// onWorker runs fn on the model's worker with a scope for its
// temporaries, under bfloat16 autocast when the run asks for it.
func (r *run) onWorker(fn func(s *torch.Scope) error) error {
	return r.m.Worker().Do(context.Background(), func() error {
		s := torch.NewScope()
		defer s.Close()
		if r.hp.BF16 {
			prev, err := torch.SetAutocast(r.m.Device(), true, torch.BFloat16)
			if err != nil {
				return err
			}
			defer torch.SetAutocast(r.m.Device(), prev, torch.BFloat16) //nolint:errcheck
		}
		return fn(s)
	})
}

// embed runs the encoder on sequences with autograd on.
func (r *run) embed(s *torch.Scope, seqs [][]int64) *torch.Tensor {
	b := minilm.PadBatch(seqs, r.m.Tokenizer.PadID())
	ids, mask, err := b.Tensors(r.m.Device())
	if err != nil {
		s.Keep(nil, err)
		return nil
	}
	s.Add(ids, mask)
	return s.Keep(r.m.Module().Forward(ids, mask))
}

// embedPairs embeds anchors and documents with autograd on or, with a
// mini-batch size, by GradCache's first pass; then the returned cache
// (nil for a plain step) must replay after the loss's backward.
func (r *run) embedPairs(s *torch.Scope, anchors, docs [][]int64) (a, d *torch.Tensor, cache *gradCache, err error) {
	if mb := r.hp.MiniBatchSize; mb > 0 {
		if cache, err = r.embedCached(s, anchors, docs, mb); err != nil {
			return nil, nil, nil, err
		}
		return cache.a, cache.d, cache, nil
	}
	a = r.embed(s, anchors)
	d = r.embed(s, docs)
	return a, d, nil, s.Err()
}

// step runs one optimizer update on the batch in this process and returns
// the loss and the gradient norm before clipping.
func (r *run) step(batch []int, lr float64) (loss, norm float64, err error) {
	anchors, docs := r.batchTexts(batch)
	err = r.onWorker(func(s *torch.Scope) error {
		a, d, cache, err := r.embedPairs(s, anchors, docs)
		if err != nil {
			return err
		}
		l, err := r.loss.Loss(s, a, d)
		if err != nil {
			return err
		}
		if loss, err = l.Item(); err != nil {
			return err
		}
		if err := l.Backward(); err != nil {
			return err
		}
		if err := cache.backward(); err != nil {
			return err
		}
		norm, err = r.clipAndStep(lr)
		return err
	})
	return loss, norm, err
}
