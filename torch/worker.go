package torch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Worker runs torch work on one OS thread, locked for the worker's lifetime.
//
// libtorch keeps grad mode, inference mode and autocast per OS thread, and
// OpenMP keeps a thread team per calling OS thread. A goroutine that hops
// between OS threads makes step times erratic (measured: training steps went
// from 1.1 s to 2.2 s) and can silently lose those modes. Everything that
// touches torch state goes through Do.
type Worker struct {
	jobs    chan job
	quit    chan struct{}
	done    chan struct{}
	closing sync.Once
}

type job struct {
	fn    func() error
	reply chan error
}

// ErrWorkerClosed is returned by Do after Close, or after a job ended the
// worker's goroutine (ErrWorkerGoexit).
var ErrWorkerClosed = errors.New("torch: worker closed")

// NewWorker starts a worker whose thread uses threads intra-op threads
// (0 keeps libtorch's default).
func NewWorker(threads int) (*Worker, error) {
	w := &Worker{jobs: make(chan job), quit: make(chan struct{}), done: make(chan struct{})}
	started := make(chan error, 1)
	go w.loop(threads, started)
	if err := <-started; err != nil {
		<-w.done
		return nil, err
	}
	return w, nil
}

func (w *Worker) loop(threads int, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(w.done)
	if threads > 0 {
		if err := SetNumThreads(threads); err != nil {
			started <- err
			return
		}
	}
	started <- nil
	for {
		select {
		case j := <-w.jobs:
			runJob(j)
		case <-w.quit:
			return
		}
	}
}

// ErrWorkerGoexit is the reply to a job that ended its goroutine with
// runtime.Goexit (as testing's FailNow does, e.g. a failed require inside
// the job). The worker's goroutine ends with it: later calls to Do return
// ErrWorkerClosed.
var ErrWorkerGoexit = errors.New("torch: worker job called runtime.Goexit; the worker has stopped")

// runJob runs j.fn and always replies: a panic in fn becomes an error so one
// bad job cannot kill the worker and strand every later caller, and a
// runtime.Goexit, which cannot be stopped, still replies before the worker's
// goroutine ends.
func runJob(j job) {
	returned := false
	defer func() {
		if r := recover(); r != nil {
			j.reply <- fmt.Errorf("torch: worker job panicked: %v", r)
		} else if !returned {
			j.reply <- ErrWorkerGoexit
		}
	}()
	err := j.fn()
	returned = true
	j.reply <- err
}

// Do runs fn on the worker's thread and waits for it. If ctx ends before the
// job starts, Do returns ctx.Err() and fn never runs; a job that has started
// runs to completion (fn can watch ctx itself).
func (w *Worker) Do(ctx context.Context, fn func() error) error {
	// select picks at random among ready cases: check first, so that an
	// already-cancelled context never runs fn.
	if err := ctx.Err(); err != nil {
		return err
	}
	reply := make(chan error, 1)
	select {
	case w.jobs <- job{fn: fn, reply: reply}:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return ErrWorkerClosed
	case <-w.done:
		return ErrWorkerClosed
	}
	return <-reply
}

// Close stops the worker after the job in progress, if any.
func (w *Worker) Close() {
	w.closing.Do(func() { close(w.quit) })
	<-w.done
}
