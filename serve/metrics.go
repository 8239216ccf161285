package serve

import (
	"bytes"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// metrics holds the server's Prometheus collectors in a registry of its
// own (not the global one), so that two servers in one process, as in the
// tests, never share counts. The registry also carries client_golang's
// standard go_* and process_* collectors.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	inputs      *prometheus.CounterVec
	truncated   *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	batchSize   prometheus.Histogram
	batchTokens prometheus.Histogram
	queueWait   prometheus.Histogram
	inference   prometheus.Histogram
	tokenizing  prometheus.Histogram

	// The batcher and the loader write these plain atomics; gauge
	// functions read them at scrape time.
	queueDepth atomic.Int64
	loaded     atomic.Bool

	http http.Handler
}

var (
	secondsBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	batchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
	tokenBuckets     = []float64{64, 256, 1024, 4096, 16384, 65536}
	// Tokenizing a short query takes about 10 µs.
	tokenizeBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1}
)

func newMetrics() *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	byRoute := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"route"})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "embtune_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	m.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "embtune_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: secondsBuckets,
	}, []string{"route"})
	m.inputs = byRoute("embtune_inputs_total", "Texts embedded, by route.")
	m.truncated = byRoute("embtune_truncated_inputs_total", "Texts cut at max_seq_length, by route.")
	m.tokens = byRoute("embtune_tokens_total", "Tokens embedded ([CLS] and [SEP] included), by route.")
	m.batchSize = histogram("embtune_batch_size", "Inputs per forward batch.", batchSizeBuckets)
	m.batchTokens = histogram("embtune_batch_padded_tokens", "Padded tokens (rows x longest row) per forward batch.", tokenBuckets)
	m.queueWait = histogram("embtune_queue_seconds", "Time an input waited in the queue before its batch ran.", secondsBuckets)
	m.inference = histogram("embtune_inference_seconds", "Time of one forward batch.", secondsBuckets)
	m.tokenizing = histogram("embtune_tokenization_seconds", "Time to tokenize one request's inputs (TEI's te_request_tokenization_duration).", tokenizeBuckets)
	queueDepth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "embtune_queue_depth", Help: "Inputs admitted and not yet embedded.",
	}, func() float64 { return float64(m.queueDepth.Load()) })
	loaded := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "embtune_model_loaded", Help: "1 when the model is loaded and requests are served.",
	}, func() float64 {
		if m.loaded.Load() {
			return 1
		}
		return 0
	})
	m.registry.MustRegister(
		m.requests, m.durations, m.inputs, m.truncated, m.tokens,
		m.batchSize, m.batchTokens, m.queueWait, m.inference, m.tokenizing, queueDepth, loaded,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// A failing collector is reported in the response rather than
	// failing the whole scrape.
	m.http = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

func (m *metrics) observeRequest(route string, code int, seconds float64) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.durations.WithLabelValues(route).Observe(seconds)
}

func (m *metrics) observeInputs(route string, inputs, truncated, tokens int) {
	m.inputs.WithLabelValues(route).Add(float64(inputs))
	m.truncated.WithLabelValues(route).Add(float64(truncated))
	m.tokens.WithLabelValues(route).Add(float64(tokens))
}

// observeBatch records one forward batch and the queue wait of its inputs.
func (m *metrics) observeBatch(rows, paddedTokens int, seconds float64, waits []float64) {
	for _, w := range waits {
		m.queueWait.Observe(w)
	}
	m.batchSize.Observe(float64(rows))
	m.batchTokens.Observe(float64(paddedTokens))
	m.inference.Observe(seconds)
}

// handler serves the registry in the text exposition format, or in what
// the scraper negotiates.
func (m *metrics) handler() http.Handler { return m.http }

// render returns the text exposition of every metric, for tests and logs.
func (m *metrics) render() []byte {
	families, err := m.registry.Gather()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if encErr := enc.Encode(f); encErr != nil && err == nil {
			err = encErr
		}
	}
	if err != nil {
		b.WriteString("# error: " + err.Error() + "\n")
	}
	return b.Bytes()
}
