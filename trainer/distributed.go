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
	var out *torch.Tensor
	for _, p := range parts {
		if p == nil {
			continue
		}
		if out == nil {
			out = p
			continue
		}
		out = s.Keep(out.Cat0(p))
		if out == nil {
			return nil
		}
	}
	return out
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

// stepShard is step for one rank of a group: it embeds the rank's shard,
// gathers (or not), backpropagates, averages the gradients and updates.
func (r *run) stepShard(batch []int, lr float64, pg *torch.ProcessGroup, gather bool, stats *CommStats) (loss, norm float64, err error) {
	W, rank := pg.Size, pg.Rank
	n := len(batch)
	k := len(r.docIDs)
	dim := r.m.Dim()
	lo, hi := shard(n, rank, W)
	mine := batch[lo:hi]
	nr := len(mine)
	rows := make([]int, W)
	maxRows := 0
	for q := range W {
		a, b := shard(n, q, W)
		rows[q] = b - a
		maxRows = max(maxRows, rows[q])
	}
	anchors := make([][]int64, nr)
	docs := make([][]int64, 0, nr*k)
	for i, idx := range mine {
		anchors[i] = r.anchorIDs[idx]
	}
	for _, col := range r.docIDs {
		for _, idx := range mine {
			docs = append(docs, col[idx])
		}
	}
	started := time.Now()
	err = r.m.Worker().Do(context.Background(), func() error {
		s := torch.NewScope()
		defer s.Close()
		if r.hp.BF16 {
			prev, err := torch.SetAutocast(r.m.Device(), true, torch.BFloat16)
			if err != nil {
				return err
			}
			defer torch.SetAutocast(r.m.Device(), prev, torch.BFloat16) //nolint:errcheck
		}
		var a, d *torch.Tensor
		if nr > 0 {
			a = r.embed(s, anchors)
			d = r.embed(s, docs)
			if err := s.Err(); err != nil {
				return err
			}
		}
		dtype, dev := torch.Float32, r.m.Device()
		if a != nil {
			var err error
			if dtype, err = a.DType(); err != nil {
				return err
			}
		}
		var l *torch.Tensor
		if gather {
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
				return err
			}
			t0 := time.Now()
			ga := s.Keep(pg.AllGather(ap))
			gd := s.Keep(pg.AllGather(dp))
			if err := s.Err(); err != nil {
				return err
			}
			stats.gather = append(stats.gather, time.Since(t0).Seconds())
			// Bytes each rank receives: the other ranks' padded shards.
			stats.GatherBytes += int64((1+k)*maxRows*dim) * int64(W-1) * int64(dtype.Size())
			var parts []*torch.Tensor
			for q := range W {
				switch {
				case rows[q] == 0:
				case q == rank:
					parts = append(parts, a)
				default:
					parts = append(parts, s.Keep(ga.Narrow(0, int64(q*maxRows), int64(rows[q]))))
				}
			}
			A := catRows(s, parts)
			parts = parts[:0]
			for c := range k {
				for q := range W {
					switch {
					case rows[q] == 0:
					case q == rank:
						parts = append(parts, s.Keep(d.Narrow(0, int64(c*nr), int64(nr))))
					default:
						parts = append(parts, s.Keep(gd.Narrow(0, int64((q*k+c)*maxRows), int64(rows[q]))))
					}
				}
			}
			D := catRows(s, parts)
			if err := s.Err(); err != nil {
				return err
			}
			var err error
			if l, err = r.loss.Loss(s, A, D); err != nil {
				return err
			}
			if loss, err = l.Item(); err != nil {
				return err
			}
			if nr > 0 {
				scaled := s.Keep(l.MulScalar(float64(W)))
				if err := s.Err(); err != nil {
					return err
				}
				if err := scaled.Backward(); err != nil {
					return err
				}
			}
		} else {
			if nr < 2 {
				return fmt.Errorf("rank %d's shard has %d pairs: without --gather-across-devices every shard needs 2 (raise --batch-size)", rank, nr)
			}
			var err error
			if l, err = r.loss.Loss(s, a, d); err != nil {
				return err
			}
			if err := l.Backward(); err != nil {
				return err
			}
			// The logged loss is the mean of the ranks' losses.
			lt := s.Keep(l.Detach())
			if err := s.Err(); err != nil {
				return err
			}
			if err := pg.AllReduce(lt, torch.ReduceSum); err != nil {
				return err
			}
			if loss, err = lt.Item(); err != nil {
				return err
			}
			loss /= float64(W)
		}
		t0 := time.Now()
		nb, buckets, err := pg.AllReduceGrads(r.params, distributed.BucketBytes)
		if err != nil {
			return err
		}
		stats.reduce = append(stats.reduce, time.Since(t0).Seconds())
		stats.ReduceBytes += nb
		stats.BucketsPerStep = buckets
		norm, err = r.clipAndStep(lr)
		return err
	})
	stats.Steps++
	stats.step = append(stats.step, time.Since(started).Seconds())
	return loss, norm, err
}
