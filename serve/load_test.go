package serve

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embtune/embtune/vecmath"
)

var loadTexts = []string{
	"How do I upgrade Debian?",
	"What is the difference between stable and testing?",
	"Where can I find the source code of a package?",
	"How do I report a bug?",
	"Can I run Debian on a Raspberry Pi?",
	"apt full-upgrade upgrades installed packages.",
	"The security team publishes advisories.",
	"Which desktop environments are available?",
	"How often is a new stable release made?",
	"Is Debian free software?",
	"What does the non-free section contain?",
	"How do I mirror the archive?",
}

type loadStats struct {
	requests, errors int
	firstErr         string
	elapsed          time.Duration
	p50, p99         time.Duration
}

func (s loadStats) rate() float64 { return float64(s.requests) / s.elapsed.Seconds() }

// runLoad has clients post 1–4 short texts each to /invocations until next
// says stop, and checks every response: one vector per input, each the
// model's own embedding of its text (ref, by text; nil checks the count
// only).
func runLoad(url string, clients int, ref map[string][]float32, next func() bool) loadStats {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var mu sync.Mutex
	var stats loadStats
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var mine []time.Duration
			var errs int
			var firstErr string
			for next() {
				in := make([]string, 1+rng.IntN(4))
				for i := range in {
					in[i] = loadTexts[rng.IntN(len(loadTexts))]
				}
				body, _ := json.Marshal(map[string]any{"inputs": in})
				t0 := time.Now()
				err := postAndCheck(client, url+"/invocations", body, in, ref)
				mine = append(mine, time.Since(t0))
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			stats.errors += errs
			if stats.firstErr == "" {
				stats.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	stats.elapsed = time.Since(start)
	stats.requests = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		stats.p50 = lat[len(lat)/2]
		stats.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	client.CloseIdleConnections()
	return stats
}

func postAndCheck(client *http.Client, url string, body []byte, in []string, ref map[string][]float32) error {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var got struct {
		Embeddings [][]float32 `json:"embeddings"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		return err
	}
	if len(got.Embeddings) != len(in) {
		return fmt.Errorf("%d vectors for %d inputs", len(got.Embeddings), len(in))
	}
	if ref == nil {
		return nil
	}
	for i, v := range got.Embeddings {
		want := ref[in[i]]
		if len(v) != len(want) {
			return fmt.Errorf("input %d (%q): %d dimensions, want %d", i, in[i], len(v), len(want))
		}
		// As requireSameVectors: batching with other requests' texts
		// changes padding, not the vector.
		if c := vecmath.Cosine(want, v); c < 0.99999 {
			return fmt.Errorf("input %d (%q): cosine %.7f to the model's own embedding", i, in[i], c)
		}
	}
	return nil
}

// loadReference is the model's own embedding of each load text, encoded
// one at a time.
func loadReference(t testing.TB) map[string][]float32 {
	t.Helper()
	ref := make(map[string][]float32, len(loadTexts))
	for _, text := range loadTexts {
		ref[text] = encodeDirect(t, []string{text}).Vectors[0]
	}
	return ref
}

// residentMiB is this process's RSS, from /proc/self/statm.
func residentMiB() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return float64(res*int64(os.Getpagesize())) / (1 << 20)
}

const (
	loadClients = 8
	// loadShortRequests is TestLoadShort's number of requests: about 8 s on
	// a 2-core machine.
	loadShortRequests = 400
)

// TestLoadShort is a bounded load test: 8 clients send 400 requests of 1–4
// texts, and every vector must be the model's own embedding of its text.
func TestLoadShort(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	ts := startReady(t, Config{})
	ref := loadReference(t)
	// Warm up, so RSS before counts the model and allocator, not first-use
	// growth; FreeOSMemory returns the garbage of model loading to the OS.
	warm := runLoad(ts.url, loadClients, ref, countdown(2*loadClients))
	if warm.errors > 0 {
		t.Fatalf("warm-up: %d errors, the first: %s", warm.errors, warm.firstErr)
	}
	debug.FreeOSMemory()
	before := residentMiB()
	st := runLoad(ts.url, loadClients, ref, countdown(loadShortRequests))
	debug.FreeOSMemory()
	after := residentMiB()
	t.Logf("%d clients, %v: %d requests, %.1f requests/s, p50 %v, p99 %v, errors %d, RSS %.0f MiB before, %.0f MiB after",
		loadClients, st.elapsed.Round(time.Millisecond), st.requests, st.rate(), st.p50.Round(time.Microsecond),
		st.p99.Round(time.Microsecond), st.errors, before, after)
	_, m := do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	batches := metricValue(t, m, "embtune_batch_size_count")
	t.Logf("forward batches %v (mean %.1f inputs), inference %.2fs in all, mean queue wait %.1f ms",
		batches, metricValue(t, m, "embtune_batch_size_sum")/batches,
		metricValue(t, m, "embtune_inference_seconds_sum"),
		1000*metricValue(t, m, "embtune_queue_seconds_sum")/metricValue(t, m, "embtune_queue_seconds_count"))
	if st.errors > 0 {
		t.Fatalf("%d errors, the first: %s", st.errors, st.firstErr)
	}
	if st.requests != loadShortRequests {
		t.Fatalf("%d requests completed, want %d", st.requests, loadShortRequests)
	}
}

// countdown allows n requests in all, across clients.
func countdown(n int64) func() bool {
	var left atomic.Int64
	left.Store(n)
	return func() bool { return left.Add(-1) >= 0 }
}

var loadRequests = flag.Int("load-requests", 10000, "requests BenchmarkLoad10k sends")

// BenchmarkLoad10k sends 10,000 requests from 8 clients; not run in CI:
//
//	go test ./serve/ -run '^$' -bench Load10k -benchtime 1x [-load-requests N]
func BenchmarkLoad10k(b *testing.B) {
	ts := startReady(b, Config{})
	ref := loadReference(b)
	runLoad(ts.url, loadClients, ref, countdown(2*loadClients))
	for b.Loop() {
		debug.FreeOSMemory()
		before := residentMiB()
		st := runLoad(ts.url, loadClients, ref, countdown(int64(*loadRequests)))
		debug.FreeOSMemory()
		after := residentMiB()
		if st.errors > 0 {
			b.Fatalf("%d errors, the first: %s", st.errors, st.firstErr)
		}
		b.ReportMetric(st.rate(), "req/s")
		b.ReportMetric(float64(st.p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(st.p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(st.errors), "errors")
		b.ReportMetric(before, "rss-before-MiB")
		b.ReportMetric(after, "rss-after-MiB")
	}
}
