package serve

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embtune/embtune/torch"
)

var (
	soakRequests = flag.Int("soak-requests", 10000, "requests BenchmarkSoak sends")
	soakRelease  = flag.Bool("soak-release", false, "BenchmarkSoak: return free C and Go heap to the OS before each RSS sample")
)

// memSample is the process's memory at one point of a soak.
type memSample struct {
	rss, cAllocated, cFree, goHeap float64 // MiB
}

func sampleMemory(release bool) memSample {
	if release {
		torch.ReleaseFreeMemory()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{rss: residentMiB(), goHeap: float64(ms.HeapInuse) / (1 << 20)}
	if c, ok := torch.ReadMallocStats(); ok {
		s.cAllocated = float64(c.Allocated) / (1 << 20)
		s.cFree = float64(c.PageHeapFree) / (1 << 20)
	}
	return s
}

// soakRequest is one request of the mix: a route, 1–16 inputs of 1–8
// sentences each (10 to 100 tokens).
func soakRequest(rng *rand.Rand) (path string, body []byte, n int) {
	n = 1 + rng.IntN(16)
	in := make([]string, n)
	for i := range in {
		words := make([]string, 1+rng.IntN(40))
		for j := range words {
			words[j] = loadTexts[rng.IntN(len(loadTexts))]
		}
		in[i] = strings.Join(words, " ")
	}
	switch rng.IntN(3) {
	case 0:
		body, _ = json.Marshal(map[string]any{"inputs": in})
		return "/invocations", body, n
	case 1:
		body, _ = json.Marshal(map[string]any{"inputs": in})
		return "/embed", body, n
	default:
		body, _ = json.Marshal(map[string]any{"input": in, "encoding_format": []string{"float", "base64"}[rng.IntN(2)]})
		return "/v1/embeddings", body, n
	}
}

// BenchmarkSoak sends -soak-requests mixed requests from 6 clients (routes
// /invocations, /embed and /v1/embeddings; 1–16 inputs) and reports RSS
// growth from the end of a warm-up (the first 20%) to the end, target < 5%,
// beside tcmalloc's allocated and free-but-kept bytes, which tell allocator
// caching from real growth. Not run in CI:
//
//	go test -tags tcmalloc ./serve/ -run '^$' -bench Soak -benchtime 1x [-soak-requests N] [-soak-release]
func BenchmarkSoak(b *testing.B) {
	const clients = 6
	ts := startReady(b, Config{})
	for b.Loop() {
		total := int64(*soakRequests)
		warm := total / 5
		var sent, errs atomic.Int64
		var mu sync.Mutex
		var samples []memSample
		var firstErr atomic.Value
		client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		// Samples at the end of the warm-up and every further 10%.
		every := max(1, (total-warm)/10)
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(c), 16))
				for {
					i := sent.Add(1)
					if i > total {
						return
					}
					path, body, _ := soakRequest(rng)
					resp, err := client.Post(ts.url+path, "application/json", bytes.NewReader(body))
					if err == nil {
						io.Copy(io.Discard, resp.Body) //nolint:errcheck
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("%s: status %d", path, resp.StatusCode)
						}
					}
					if err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					if i >= warm && (i-warm)%every == 0 {
						s := sampleMemory(*soakRelease)
						mu.Lock()
						samples = append(samples, s)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		client.CloseIdleConnections()
		end := sampleMemory(*soakRelease)
		if n := errs.Load(); n > 0 {
			b.Fatalf("%d errors, the first: %v", n, firstErr.Load())
		}
		start := samples[0]
		peak := 0.0
		for _, s := range samples {
			peak = max(peak, s.rss)
		}
		b.ReportMetric(start.rss, "rss-warm-MiB")
		b.ReportMetric(end.rss, "rss-end-MiB")
		b.ReportMetric(peak, "rss-peak-MiB")
		b.ReportMetric(100*(end.rss-start.rss)/start.rss, "rss-growth-%")
		b.ReportMetric(end.cAllocated-start.cAllocated, "c-allocated-growth-MiB")
		b.ReportMetric(end.cFree, "c-free-kept-MiB")
		b.ReportMetric(end.goHeap-start.goHeap, "go-heap-growth-MiB")
		for i, s := range samples {
			b.Logf("sample %d: RSS %.0f MiB, C allocated %.0f MiB, C free kept %.0f MiB, Go heap %.0f MiB", i, s.rss, s.cAllocated, s.cFree, s.goHeap)
		}
	}
}
