package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/embtune/embtune/distributed"
	"github.com/embtune/embtune/torch"
)

// Data parallelism, as DistributedDataParallel plus sentence-transformers'
// MultipleNegativesRankingLoss(gather_across_devices=True):
//
//   - every rank builds the same batches (same seed) and embeds its shard:
//     consecutive pairs of the batch, rank 0 first;
//   - with gather, the shards' embeddings are all-gathered and the loss runs
//     over the global batch on every rank. Each rank splices its own
//     embeddings, with their autograd history, into the gathered ones, so
//     backward reaches exactly its own shard: the gradient an autograd
//     all-gather (whose backward is a reduce-scatter) would deliver. The
//     loss is a B×kB matrix, microseconds against the encoder, so running it
//     on every rank is cheaper than a second collective in backward;
//   - gradients are averaged in buckets before clipping, so clipping and
//     AdamW see the same numbers everywhere and the weights stay identical.
//     Each rank's loss is scaled by the world size so that the average is
//     the gradient of the global batch's mean loss, as one process gets.

// CommStats is the communication of a distributed run, for scaling
// estimates: per-step medians of the whole step, the all-gather
// (embeddings) and the all-reduce (gradients), and the bytes per step.
type CommStats struct {
	Steps     int `json:"steps"`
	WorldSize int `json:"world_size"`
	// Medians over the steps, in seconds.
	StepSeconds   float64 `json:"step_seconds_median"`
	GatherSeconds float64 `json:"all_gather_seconds_median"`
	ReduceSeconds float64 `json:"all_reduce_seconds_median"`
	// GatherBytes is what one rank receives per step (the other ranks'
	// padded embeddings); ReduceBytes the gradient payload it all-reduces.
	GatherBytes    int64 `json:"all_gather_bytes_per_step"`
	ReduceBytes    int64 `json:"all_reduce_bytes_per_step"`
	BucketsPerStep int   `json:"buckets_per_step"`

	step, gather, reduce []float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// finish turns the per-step samples into medians and the byte totals into
// per-step figures.
func (c *CommStats) finish() {
	c.StepSeconds, c.GatherSeconds, c.ReduceSeconds = median(c.step), median(c.gather), median(c.reduce)
	if c.Steps > 0 {
		c.GatherBytes /= int64(c.Steps)
		c.ReduceBytes /= int64(c.Steps)
	}
}

// shard returns the [start, end) of rank's share of an n-pair batch: sizes
// differ by at most one, the larger shards first.
func shard(n, rank, size int) (start, end int) {
	q, r := n/size, n%size
	start = rank*q + min(rank, r)
	end = start + q
	if rank < r {
		end++
	}
	return start, end
}

// shardSeed is rank's dropout seed: the run's seed for rank 0, a distinct
// stream derived from it for the others, so repeated runs draw the same masks.
func shardSeed(seed uint64, rank int) uint64 {
	if rank == 0 {
		return seed
	}
	z := seed + uint64(rank)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// agreeSettings is what every rank must share: each hyperparameter by its
// JSON name, the data hash, and the run options that change the maths.
func agreeSettings(hp HyperParameters, dataHash string, pairs int, gather bool, world int) (map[string]string, error) {
	b, err := json.Marshal(hp)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range fields {
		out[k] = fmt.Sprint(v)
	}
	out["data (hash)"] = dataHash
	out["pairs"] = fmt.Sprint(pairs)
	out["gather_across_devices"] = fmt.Sprint(gather)
	out["world_size"] = fmt.Sprint(world)
	return out, nil
}

// stopAgreed all-reduces (max) this rank's wish to stop, so that every
// rank stops after the same step.
func (r *run) stopAgreed(pg *torch.ProcessGroup, stop bool) (bool, error) {
	var agreed bool
	err := r.m.Worker().Do(context.Background(), func() error {
		v := float32(0)
		if stop {
			v = 1
		}
		t, err := torch.FromFloat32([]float32{v}, 1)
		if err != nil {
			return err
		}
		defer t.Close()
		if err := pg.AllReduce(t, torch.ReduceMax); err != nil {
			return err
		}
		f, err := t.Float32s()
		agreed = err == nil && f[0] > 0
		return err
	})
	return agreed, err
}

// catRows concatenates along dimension 0, skipping nils.
func catRows(s *torch.Scope, parts []*torch.Tensor) *torch.Tensor {
	// One torch.cat over all the parts: concatenating them one at a time
	// would keep every partial result in s, memory quadratic in the number
	// of parts (GradCache's first pass at batch 20,000 and mini-batch 16
	// has 1,250 a side).
	var live []*torch.Tensor
	for _, p := range parts {
		if p != nil {
			live = append(live, p)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	return s.Keep(torch.Cat(0, live...))
}

// padRows returns t with zero rows appended up to rows (t may be nil for 0 rows).
func padRows(s *torch.Scope, t *torch.Tensor, have, rows, dim int, dtype torch.DType, dev torch.Device) *torch.Tensor {
	if have == rows {
		return t
	}
	z := s.Keep(torch.Zeros(dtype, dev, int64(rows-have), int64(dim)))
	if t == nil {
		return z
	}
	return s.Keep(t.Cat0(z))
}

// shardPlan is how a batch splits over the ranks of a group.
type shardPlan struct {
	world, rank int
	// mine is this rank's share of the batch; rows[q] the size of rank q's,
	// maxRows the largest.
	mine    []int
	rows    []int
	maxRows int
	// cols is the document columns (1 + hard negatives), dim the embedding size.
	cols, dim int
}

func (r *run) planShard(batch []int, pg *torch.ProcessGroup) shardPlan {
	p := shardPlan{world: pg.Size, rank: pg.Rank, rows: make([]int, pg.Size), cols: len(r.docIDs), dim: r.m.Dim()}
	lo, hi := shard(len(batch), p.rank, p.world)
	p.mine = batch[lo:hi]
	for q := range p.world {
		a, b := shard(len(batch), q, p.world)
		p.rows[q] = b - a
		p.maxRows = max(p.maxRows, p.rows[q])
	}
	return p
}

// stepShard is step for one rank of a group: it embeds the rank's shard,
// gathers (or not), backpropagates, averages the gradients and updates.
func (r *run) stepShard(batch []int, lr float64, pg *torch.ProcessGroup, gather bool, stats *CommStats) (loss, norm float64, err error) {
	p := r.planShard(batch, pg)
	anchors, docs := r.batchTexts(p.mine)
	started := time.Now()
	err = r.onWorker(func(s *torch.Scope) error {
		var a, d *torch.Tensor
		var cache *gradCache
		if len(p.mine) > 0 {
			var err error
			if a, d, cache, err = r.embedPairs(s, anchors, docs); err != nil {
				return err
			}
		}
		var err error
		if gather {
			loss, err = r.gatheredLoss(s, p, a, d, pg, stats)
		} else {
			loss, err = r.shardLoss(s, p, a, d, pg)
		}
		if err != nil {
			return err
		}
		// Cached: each rank replays only its own mini-batches.
		if err := cache.backward(); err != nil {
			return err
		}
		norm, err = r.reduceAndStep(pg, lr, stats)
		return err
	})
	stats.Steps++
	stats.step = append(stats.step, time.Since(started).Seconds())
	return loss, norm, err
}

// gatheredLoss runs the loss over the global batch: it all-gathers every
// rank's embeddings, splices its own (with their autograd history) in, and
// backpropagates the loss scaled by the world size into its own shard.
func (r *run) gatheredLoss(s *torch.Scope, p shardPlan, a, d *torch.Tensor, pg *torch.ProcessGroup, stats *CommStats) (float64, error) {
	A, D, err := r.gatherBatch(s, p, a, d, pg, stats)
	if err != nil {
		return 0, err
	}
	l, err := r.loss.Loss(s, A, D)
	if err != nil {
		return 0, err
	}
	loss, err := l.Item()
	if err != nil {
		return 0, err
	}
	if len(p.mine) > 0 {
		scaled := s.Keep(l.MulScalar(float64(p.world)))
		if err := s.Err(); err != nil {
			return 0, err
		}
		if err := scaled.Backward(); err != nil {
			return 0, err
		}
	}
	return loss, nil
}

// gatherBatch all-gathers the shards' anchors a and documents d (nil on a
// rank with no pairs) and returns the global batch's: anchors in rank
// order, documents column by column, each column in rank order (the
// alignment sentence-transformers #3453 fixed), this rank's rows being a
// and d themselves.
func (r *run) gatherBatch(s *torch.Scope, p shardPlan, a, d *torch.Tensor, pg *torch.ProcessGroup, stats *CommStats) (A, D *torch.Tensor, err error) {
	nr, k, dim, maxRows := len(p.mine), p.cols, p.dim, p.maxRows
	dtype, dev := torch.Float32, r.m.Device()
	if a != nil {
		if dtype, err = a.DType(); err != nil {
			return nil, nil, err
		}
	}
	// Pad every shard to maxRows rows per column: all-gather needs equal shapes.
	ap := padRows(s, a, nr, maxRows, dim, dtype, dev)
	var dcols []*torch.Tensor
	for c := range k {
		var col *torch.Tensor
		if nr > 0 {
			col = s.Keep(d.Narrow(0, int64(c*nr), int64(nr)))
		}
		dcols = append(dcols, padRows(s, col, nr, maxRows, dim, dtype, dev))
	}
	dp := catRows(s, dcols)
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	t0 := time.Now()
	ga := s.Keep(pg.AllGather(ap))
	gd := s.Keep(pg.AllGather(dp))
	if err := s.Err(); err != nil {
		return nil, nil, err
	}
	stats.gather = append(stats.gather, time.Since(t0).Seconds())
	// Bytes each rank receives: the other ranks' padded shards.
	stats.GatherBytes += int64((1+k)*maxRows*dim) * int64(p.world-1) * int64(dtype.Size())
	var parts []*torch.Tensor
	for q := range p.world {
		switch {
		case p.rows[q] == 0:
		case q == p.rank:
			parts = append(parts, a)
		default:
			parts = append(parts, s.Keep(ga.Narrow(0, int64(q*maxRows), int64(p.rows[q]))))
		}
	}
	A = catRows(s, parts)
	parts = parts[:0]
	for c := range k {
		for q := range p.world {
			switch {
			case p.rows[q] == 0:
			case q == p.rank:
				parts = append(parts, s.Keep(d.Narrow(0, int64(c*nr), int64(nr))))
			default:
				parts = append(parts, s.Keep(gd.Narrow(0, int64((q*k+c)*maxRows), int64(p.rows[q]))))
			}
		}
	}
	D = catRows(s, parts)
	return A, D, s.Err()
}

// shardLoss runs the loss over this rank's shard alone and backpropagates
// it; the logged loss is the mean of the ranks' losses.
func (r *run) shardLoss(s *torch.Scope, p shardPlan, a, d *torch.Tensor, pg *torch.ProcessGroup) (float64, error) {
	if nr := len(p.mine); nr < 2 {
		return 0, fmt.Errorf("rank %d's shard has %d pairs: without --gather-across-devices every shard needs 2 (raise --batch-size)", p.rank, nr)
	}
	l, err := r.loss.Loss(s, a, d)
	if err != nil {
		return 0, err
	}
	if err := l.Backward(); err != nil {
		return 0, err
	}
	lt := s.Keep(l.Detach())
	if err := s.Err(); err != nil {
		return 0, err
	}
	if err := pg.AllReduce(lt, torch.ReduceSum); err != nil {
		return 0, err
	}
	loss, err := lt.Item()
	return loss / float64(p.world), err
}

// reduceAndStep averages the gradients across the group in buckets, then
// clips and updates.
func (r *run) reduceAndStep(pg *torch.ProcessGroup, lr float64, stats *CommStats) (float64, error) {
	t0 := time.Now()
	nb, buckets, err := pg.AllReduceGrads(r.params, distributed.BucketBytes)
	if err != nil {
		return 0, err
	}
	stats.reduce = append(stats.reduce, time.Since(t0).Seconds())
	stats.ReduceBytes += nb
	stats.BucketsPerStep = buckets
	return r.clipAndStep(lr)
}
