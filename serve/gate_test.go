package serve

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/embtune/embtune/minilm"
)

// encodeGate holds the server's next forward batch until open is called, so
// that a test can line requests up behind a running batch (queued, counted
// by batcher.queued) without relying on BatchWait's timer.
type encodeGate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when a batch is held
	release chan struct{}
	once    sync.Once
}

// startGated is startReady with the batcher's encoder behind a gate, armed
// once the model is loaded.
func startGated(t *testing.T, cfg Config) (*testServer, *encodeGate) {
	t.Helper()
	g := &encodeGate{entered: make(chan struct{}), release: make(chan struct{})}
	m := sharedModel(t)
	ts := startServerWith(t, cfg, func(context.Context) (*minilm.Model, error) { return m, nil }, func(s *Server) {
		encode := s.batcher.encode
		s.batcher.encode = func(ctx context.Context, seqs [][]int64) ([][]float32, error) {
			g.mu.Lock()
			hold := g.armed
			g.armed = false
			g.mu.Unlock()
			if hold {
				close(g.entered)
				<-g.release
			}
			return encode(ctx, seqs)
		}
	})
	t.Cleanup(g.open) // a failed test must not leave the batcher held
	waitFor(t, "model loaded", ts.Ready)
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
	return ts, g
}

// held waits until a batch is held at the gate.
func (g *encodeGate) held(t *testing.T) {
	t.Helper()
	waitFor(t, "a batch held at the gate", func() bool {
		select {
		case <-g.entered:
			return true
		default:
			return false
		}
	})
}

// open lets the held batch (and every later one) run.
func (g *encodeGate) open() { g.once.Do(func() { close(g.release) }) }

// listenerClosed reports whether the server's address refuses connections:
// its graceful shutdown has begun.
func listenerClosed(url string) bool {
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		return true
	}
	c.Close()
	return false
}
