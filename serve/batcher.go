package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

var (
	errQueueFull    = errors.New("serve: queue full")
	errShuttingDown = errors.New("serve: shutting down")
)

// encodeFunc runs one padded batch; it is the model's EncodeIDs.
type encodeFunc func(ctx context.Context, seqs [][]int64) ([][]float32, error)

// batcher groups the tokenized inputs of concurrent requests into forward
// batches. Torch work is serialised on one thread anyway, so one goroutine
// feeding it bigger batches costs no parallelism and pads less.
type batcher struct {
	maxRows, maxTokens, maxQueue int
	wait                         time.Duration
	encode                       encodeFunc
	metrics                      *metrics

	mu      sync.Mutex
	queue   []item
	pending int // inputs admitted and not yet delivered, queued or running
	stopped bool

	wake chan struct{} // capacity 1: "the queue grew"
	quit chan struct{}
}

type item struct {
	ids []int64
	req *request
	idx int // position in req.vecs
}

// request is one HTTP request's share of the queue. Only the batcher
// goroutine touches left, vecs and err once the items are queued; the
// handler reads vecs and err after done is closed.
type request struct {
	ctx      context.Context
	enqueued time.Time
	vecs     [][]float32
	left     int
	err      error
	done     chan struct{}
}

func newBatcher(cfg Config, m *metrics, encode encodeFunc) *batcher {
	return &batcher{
		maxRows:   cfg.MaxBatchSize,
		maxTokens: cfg.MaxBatchTokens,
		maxQueue:  cfg.MaxQueue,
		wait:      cfg.BatchWait,
		encode:    encode,
		metrics:   m,
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
	}
}

// submit queues one request's sequences and waits for their vectors, in
// order. If ctx ends first it returns ctx.Err(); the batcher then skips
// the request's inputs that have not run yet.
func (b *batcher) submit(ctx context.Context, seqs [][]int64) ([][]float32, error) {
	if len(seqs) == 0 {
		return nil, nil // nothing would ever close done
	}
	r := &request{ctx: ctx, enqueued: time.Now(), vecs: make([][]float32, len(seqs)), left: len(seqs), done: make(chan struct{})}
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return nil, errShuttingDown
	}
	if b.pending > 0 && b.pending+len(seqs) > b.maxQueue {
		b.mu.Unlock()
		return nil, errQueueFull
	}
	for i, ids := range seqs {
		b.queue = append(b.queue, item{ids: ids, req: r, idx: i})
	}
	b.pending += len(seqs)
	b.metrics.queueDepth.Store(int64(b.pending))
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		return r.vecs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// queued is the number of inputs admitted and not yet delivered.
func (b *batcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
}

func (b *batcher) run() {
	var idle <-chan time.Time // armed after each batch; fires once the server is idle
	var mem memoryBound
	for {
		select {
		case <-b.quit:
			b.failQueued()
			return
		case <-b.wake:
		case <-idle:
			idle = nil
			releaseMemory()
			continue
		}
		b.fill()
		if items := b.take(); len(items) > 0 {
			b.process(items)
		}
		mem.afterBatch()
		idle = time.After(idleRelease)
	}
}

// stop makes later submits fail and ends run after the work in hand; inputs
// still queued then get errShuttingDown.
func (b *batcher) stop() {
	b.mu.Lock()
	already := b.stopped
	b.stopped = true
	b.mu.Unlock()
	if !already {
		close(b.quit)
	}
}

// fill waits until a full batch is queued or the oldest input has waited
// BatchWait. Inputs that queued up during the previous batch have usually
// waited that long already, so under load this adds no delay.
func (b *batcher) fill() {
	if b.wait <= 0 {
		return
	}
	for {
		b.mu.Lock()
		n := len(b.queue)
		var oldest time.Time
		if n > 0 {
			oldest = b.queue[0].req.enqueued
		}
		b.mu.Unlock()
		if n == 0 || n >= b.maxRows {
			return
		}
		left := b.wait - time.Since(oldest)
		if left <= 0 {
			return
		}
		t := time.NewTimer(left)
		select {
		case <-b.wake:
			t.Stop()
		case <-t.C:
			return
		case <-b.quit:
			t.Stop()
			return
		}
	}
}

// take empties the queue, dropping inputs of requests that went away.
func (b *batcher) take() []item {
	b.mu.Lock()
	items := b.queue
	b.queue = nil
	b.mu.Unlock()
	live := items[:0]
	for _, it := range items {
		if it.req.ctx.Err() == nil {
			live = append(live, it)
		}
	}
	b.release(len(items) - len(live))
	return live
}

func (b *batcher) release(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.pending -= n
	b.metrics.queueDepth.Store(int64(b.pending))
	b.mu.Unlock()
}

// process runs everything taken, longest inputs first so that each batch
// holds inputs of similar length and pads little.
func (b *batcher) process(items []item) {
	slices.SortStableFunc(items, func(x, y item) int { return len(y.ids) - len(x.ids) })
	lengths := make([]int, len(items))
	for i, it := range items {
		lengths[i] = len(it.ids)
	}
	start := 0
	for _, end := range planBatches(lengths, b.maxRows, b.maxTokens) {
		batch := items[start:end]
		start = end
		// Requests may have gone away or failed while earlier batches ran;
		// dropping rows only shrinks the batch, so it stays within budget.
		live := batch[:0]
		for _, it := range batch {
			if it.req.left > 0 && it.req.ctx.Err() == nil {
				live = append(live, it)
			}
		}
		b.release(len(batch) - len(live))
		if len(live) > 0 {
			b.runBatch(live)
		}
	}
}

// planBatches cuts lengths (sorted longest first) into consecutive batches
// of at most maxRows rows and maxTokens padded tokens (rows × the first,
// longest, row). It returns each batch's end index.
func planBatches(lengths []int, maxRows, maxTokens int) []int {
	var ends []int
	for start := 0; start < len(lengths); {
		longest := lengths[start]
		end := start + 1
		for end < len(lengths) && end-start < maxRows && (end-start+1)*longest <= maxTokens {
			end++
		}
		ends = append(ends, end)
		start = end
	}
	return ends
}

func (b *batcher) runBatch(batch []item) {
	start := time.Now()
	seqs := make([][]int64, len(batch))
	waits := make([]float64, len(batch))
	for i, it := range batch {
		seqs[i] = it.ids
		waits[i] = start.Sub(it.req.enqueued).Seconds()
	}
	vecs, err := b.safeEncode(seqs)
	if err == nil && len(vecs) != len(batch) {
		err = fmt.Errorf("encoder returned %d vectors for %d inputs", len(vecs), len(batch))
	}
	b.metrics.observeBatch(len(batch), len(batch)*len(batch[0].ids), time.Since(start).Seconds(), waits)
	// Release before delivering, so a client that sends its next request at
	// once is not counted twice against MaxQueue.
	b.release(len(batch))
	for i, it := range batch {
		r := it.req
		if r.left == 0 {
			continue // already failed
		}
		if err != nil {
			r.err = err
			r.left = 0
			close(r.done)
			continue
		}
		r.vecs[it.idx] = vecs[i]
		if r.left--; r.left == 0 {
			close(r.done)
		}
	}
}

// safeEncode keeps the batcher alive if the encoder panics; the worker
// already recovers panics inside torch jobs, this covers the code around it.
func (b *batcher) safeEncode(seqs [][]int64) (vecs [][]float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			vecs, err = nil, fmt.Errorf("encoder panicked: %v", p)
		}
	}()
	// Not a request's context: the batch is shared, and one client leaving
	// must not fail the others.
	return b.encode(context.Background(), seqs)
}

func (b *batcher) failQueued() {
	b.mu.Lock()
	items := b.queue
	b.queue = nil
	b.mu.Unlock()
	for _, it := range items {
		if r := it.req; r.left > 0 {
			r.err = errShuttingDown
			r.left = 0
			close(r.done)
		}
	}
	b.release(len(items))
}
