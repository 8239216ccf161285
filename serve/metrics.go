package serve

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// metrics is a small Prometheus text-format registry, written by hand to
// keep the server's dependencies at the standard library.
type metrics struct {
	mu          sync.Mutex
	requests    map[routeCode]uint64
	durations   map[string]*histogram
	inputs      map[string]uint64
	truncated   map[string]uint64
	tokens      map[string]uint64
	batchSize   *histogram
	batchTokens *histogram
	queueWait   *histogram
	inference   *histogram

	queueDepth atomic.Int64
	loaded     atomic.Bool
}

type routeCode struct {
	route string
	code  int
}

var (
	secondsBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	batchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
	tokenBuckets     = []float64{64, 256, 1024, 4096, 16384, 65536}
)

func newMetrics() *metrics {
	return &metrics{
		requests:    map[routeCode]uint64{},
		durations:   map[string]*histogram{},
		inputs:      map[string]uint64{},
		truncated:   map[string]uint64{},
		tokens:      map[string]uint64{},
		batchSize:   newHistogram(batchSizeBuckets),
		batchTokens: newHistogram(tokenBuckets),
		queueWait:   newHistogram(secondsBuckets),
		inference:   newHistogram(secondsBuckets),
	}
}

func (m *metrics) observeRequest(route string, code int, seconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[routeCode{route, code}]++
	h := m.durations[route]
	if h == nil {
		h = newHistogram(secondsBuckets)
		m.durations[route] = h
	}
	h.add(seconds)
}

func (m *metrics) observeInputs(route string, inputs, truncated, tokens int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inputs[route] += uint64(inputs)
	m.truncated[route] += uint64(truncated)
	m.tokens[route] += uint64(tokens)
}

// observeBatch records one forward batch and the queue wait of its inputs.
func (m *metrics) observeBatch(rows, paddedTokens int, seconds float64, waits []float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range waits {
		m.queueWait.add(w)
	}
	m.batchSize.add(float64(rows))
	m.batchTokens.add(float64(paddedTokens))
	m.inference.add(seconds)
}

func (m *metrics) render() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b bytes.Buffer

	header(&b, "embtune_http_requests_total", "counter", "HTTP requests by route and status code.")
	keys := make([]routeCode, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].route != keys[j].route {
			return keys[i].route < keys[j].route
		}
		return keys[i].code < keys[j].code
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "embtune_http_requests_total{route=%s,code=\"%d\"} %d\n", quote(k.route), k.code, m.requests[k])
	}

	header(&b, "embtune_http_request_duration_seconds", "histogram", "HTTP request latency by route.")
	for _, route := range sortedKeys(m.durations) {
		m.durations[route].write(&b, "embtune_http_request_duration_seconds", "route="+quote(route))
	}

	counterByRoute(&b, "embtune_inputs_total", "Texts embedded, by route.", m.inputs)
	counterByRoute(&b, "embtune_truncated_inputs_total", "Texts cut at max_seq_length, by route.", m.truncated)
	counterByRoute(&b, "embtune_tokens_total", "Tokens embedded ([CLS] and [SEP] included), by route.", m.tokens)

	header(&b, "embtune_batch_size", "histogram", "Inputs per forward batch.")
	m.batchSize.write(&b, "embtune_batch_size", "")
	header(&b, "embtune_batch_padded_tokens", "histogram", "Padded tokens (rows x longest row) per forward batch.")
	m.batchTokens.write(&b, "embtune_batch_padded_tokens", "")
	header(&b, "embtune_queue_seconds", "histogram", "Time an input waited in the queue before its batch ran.")
	m.queueWait.write(&b, "embtune_queue_seconds", "")
	header(&b, "embtune_inference_seconds", "histogram", "Time of one forward batch.")
	m.inference.write(&b, "embtune_inference_seconds", "")

	header(&b, "embtune_queue_depth", "gauge", "Inputs admitted and not yet embedded.")
	fmt.Fprintf(&b, "embtune_queue_depth %d\n", m.queueDepth.Load())
	header(&b, "embtune_model_loaded", "gauge", "1 when the model is loaded and requests are served.")
	loaded := 0
	if m.loaded.Load() {
		loaded = 1
	}
	fmt.Fprintf(&b, "embtune_model_loaded %d\n", loaded)
	return b.Bytes()
}

func header(b *bytes.Buffer, name, typ, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func counterByRoute(b *bytes.Buffer, name, help string, values map[string]uint64) {
	header(b, name, "counter", help)
	for _, route := range sortedKeys(values) {
		fmt.Fprintf(b, "%s{route=%s} %d\n", name, quote(route), values[route])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quote escapes a label value as the text format requires.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

type histogram struct {
	bounds []float64
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) add(v float64) {
	if math.IsNaN(v) {
		return
	}
	h.counts[sort.SearchFloat64s(h.bounds, v)]++ // le is inclusive
	h.sum += v
	h.count++
}

func (h *histogram) write(b *bytes.Buffer, name, labels string) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, bound := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(b, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, strconv.FormatFloat(bound, 'g', -1, 64), cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, cum)
	braces := ""
	if labels != "" {
		braces = "{" + labels + "}"
	}
	fmt.Fprintf(b, "%s_sum%s %s\n", name, braces, strconv.FormatFloat(h.sum, 'g', -1, 64))
	fmt.Fprintf(b, "%s_count%s %d\n", name, braces, h.count)
}
