// Command soak starts `embtune serve`, sends it a mix of requests from
// several clients for a while, and reports the error counts and the
// server's resident memory (RSS) over the run:
//
//	go run ./bench/soak --binary bin/embtune --quantize int8 --duration 10m --clients 4
//
// The mix covers /embed, POST /, /v1/embeddings, /invocations (JSON, JSON
// Lines and CSV), /tokenize, /ping and /health, with 1 to 32 inputs of 1
// to about 400 words, plus requests that must be refused (bad JSON,
// mis-cased keys, a wrong method or media type, too many inputs, an
// unknown path): those count apart, as expected 4xx. Anything else, a
// 5xx, a refused good request, an accepted bad one, an answer of the wrong
// size or a broken connection, is an unexpected error.
//
// RSS is read from /proc/PID/status every --sample; the growth is from the
// end of --warmup to the end of the run. The command exits 1 when there
// was an unexpected error or the growth exceeds --max-growth.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	binary := flag.String("binary", "bin/embtune", "embtune binary to serve with")
	model := flag.String("model", "third_party/models/all-MiniLM-L6-v2", "sentence-transformers model folder")
	quantize := flag.String("quantize", "int8", "serve's --quantize")
	duration := flag.Duration("duration", 10*time.Minute, "how long the clients send requests")
	clients := flag.Int("clients", 4, "concurrent clients")
	warmup := flag.Duration("warmup", time.Minute, "RSS growth is measured from the end of this")
	sample := flag.Duration("sample", 5*time.Second, "RSS sampling interval")
	maxGrowth := flag.Float64("max-growth", 5, "RSS growth (percent) above which the soak fails")
	seed := flag.Uint64("seed", 1, "random seed of the request mix")
	flag.Parse()
	if *clients < 1 || *duration <= 0 || *sample <= 0 || *warmup < 0 || *warmup >= *duration {
		fmt.Fprintln(os.Stderr, "soak: --clients must be positive, --duration and --sample positive, and --warmup shorter than --duration")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{binary: *binary, model: *model, quantize: *quantize, duration: *duration, clients: *clients,
		warmup: *warmup, sample: *sample, seed: *seed}
	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout, cfg)
	if rep.unexpected() > 0 || rep.growth(cfg.warmup) > *maxGrowth {
		os.Exit(1)
	}
}

type config struct {
	binary, model, quantize string
	duration, warmup        time.Duration
	sample                  time.Duration
	clients                 int
	seed                    uint64
}

// run starts the server, waits until /ping answers 200, then soaks it.
func run(ctx context.Context, cfg config) (*report, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv := exec.Command(cfg.binary, "serve", "--model", cfg.model, "--quantize", cfg.quantize, "--addr", addr)
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", cfg.binary, err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
	}()
	base := "http://" + addr
	if err := waitReady(ctx, base, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("%w; server output:\n%s", err, logs.String())
	}
	rep := &report{pid: srv.Process.Pid, routes: map[string]*routeCount{}, start: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rep.sampleRSS(ctx, cfg.sample)
	}()
	client := &http.Client{Timeout: 2 * time.Minute}
	for c := 0; c < cfg.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(c)))
			for ctx.Err() == nil {
				req := nextRequest(rng)
				rep.record(req, send(ctx, client, base, req))
			}
		}(c)
	}
	wg.Wait()
	rep.end = time.Now()
	if srv.ProcessState != nil {
		return nil, fmt.Errorf("server exited during the soak: %s\n%s", srv.ProcessState, logs.String())
	}
	return rep, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("server not ready after %s", limit)
}

// request is one request of the mix and what a right answer looks like.
type request struct {
	name        string // route and variant, for the counts
	method      string
	path        string
	contentType string
	body        []byte
	bad         bool // must be refused with a 4xx
	// check reads a 2xx body of a good request; nil accepts any.
	check func([]byte) error
}

var words = strings.Fields(`how do i upgrade debian to the next stable release without losing my configuration files
where can i find the source code of a package and build it myself what is the difference between testing and
unstable can i run debian on a raspberry pi which mirror should i use for security updates why does apt say that
a package has unmet dependencies how do i pin a package to an older version the kernel panics after an update
résumé naïve café 東京 ?! ... -- 42 OK no`)

// texts gives n texts of 1 to 400 words (most short), with one- and
// two-token texts among them.
func texts(rng *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		var k int
		switch r := rng.IntN(10); {
		case r < 2:
			k = 1 + rng.IntN(2)
		case r < 8:
			k = 3 + rng.IntN(30)
		default:
			k = 30 + rng.IntN(370)
		}
		w := make([]string, k)
		for j := range w {
			w[j] = words[rng.IntN(len(words))]
		}
		out[i] = strings.Join(w, " ")
	}
	return out
}

func inputCount(rng *rand.Rand) int {
	if rng.IntN(4) == 0 {
		return 8 + rng.IntN(25)
	}
	return 1 + rng.IntN(8)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes of strings are marshalled
	}
	return b
}

// nextRequest draws one request: about one in eight must be refused.
func nextRequest(rng *rand.Rand) request {
	if rng.IntN(8) == 0 {
		return badRequest(rng)
	}
	n := inputCount(rng)
	in := texts(rng, n)
	jsonPost := func(name, path string, body any, check func([]byte) error) request {
		return request{name: name, method: http.MethodPost, path: path, contentType: "application/json", body: mustJSON(body), check: check}
	}
	switch rng.IntN(10) {
	case 0:
		return jsonPost("POST /embed", "/embed", map[string]any{"inputs": in}, matrix(n))
	case 1:
		return jsonPost("POST /", "/", map[string]any{"inputs": in}, matrix(n))
	case 2:
		return jsonPost("POST /v1/embeddings", "/v1/embeddings",
			map[string]any{"input": in, "encoding_format": []string{"float", "base64"}[rng.IntN(2)]}, openAI(n))
	case 3:
		return jsonPost("POST /invocations json", "/invocations", map[string]any{"inputs": in}, embeddings(n))
	case 4:
		var b bytes.Buffer
		for _, t := range in {
			b.Write(mustJSON(map[string]string{"text": t}))
			b.WriteByte('\n')
		}
		return request{name: "POST /invocations jsonl", method: http.MethodPost, path: "/invocations",
			contentType: "application/jsonlines", body: b.Bytes(), check: lines(n)}
	case 5:
		var b bytes.Buffer
		for _, t := range in {
			b.WriteString(`"` + strings.ReplaceAll(t, `"`, `""`) + "\"\n")
		}
		return request{name: "POST /invocations csv", method: http.MethodPost, path: "/invocations",
			contentType: "text/csv", body: b.Bytes(), check: embeddings(n)}
	case 6:
		return jsonPost("POST /tokenize", "/tokenize", map[string]any{"inputs": in}, count(n))
	case 7:
		return request{name: "GET /ping", method: http.MethodGet, path: "/ping"}
	case 8:
		return request{name: "GET /health", method: http.MethodGet, path: "/health"}
	default:
		return jsonPost("POST /invocations json", "/invocations", map[string]any{"inputs": in[0]}, embeddings(1))
	}
}

func badRequest(rng *rand.Rand) request {
	bad := func(name, method, path, ct, body string) request {
		return request{name: "bad: " + name, method: method, path: path, contentType: ct, body: []byte(body), bad: true}
	}
	switch rng.IntN(8) {
	case 0:
		return bad("truncated JSON", http.MethodPost, "/embed", "application/json", `{"inputs": ["a", `)
	case 1:
		return bad("mis-cased key", http.MethodPost, "/invocations", "application/json", `{"Inputs": "hello"}`)
	case 2:
		return bad("JSON Lines TEXT", http.MethodPost, "/invocations", "application/jsonlines", "{\"text\": \"a\"}\n{\"TEXT\": \"b\"}\n")
	case 3:
		return bad("CSV two fields", http.MethodPost, "/invocations", "text/csv", "a,b\n")
	case 4:
		return bad("GET /embed", http.MethodGet, "/embed", "", "")
	case 5:
		return bad("text/plain", http.MethodPost, "/v1/embeddings", "text/plain", `{"input": "a"}`)
	case 6:
		in := make([]string, 1025)
		for i := range in {
			in[i] = "x"
		}
		return request{name: "bad: 1025 inputs", method: http.MethodPost, path: "/embed", contentType: "application/json",
			body: mustJSON(map[string]any{"inputs": in}), bad: true}
	default:
		return bad("unknown path", http.MethodPost, "/nosuch", "application/json", `{}`)
	}
}

// Checks of good answers: the number of vectors (or token lists) returned.
func matrix(n int) func([]byte) error {
	return func(b []byte) error {
		var v [][]float32
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return wantLen(len(v), n)
	}
}

func embeddings(n int) func([]byte) error {
	return func(b []byte) error {
		var v struct {
			Embeddings [][]float32 `json:"embeddings"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return wantLen(len(v.Embeddings), n)
	}
}

func openAI(n int) func([]byte) error {
	return func(b []byte) error {
		var v struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return wantLen(len(v.Data), n)
	}
}

func count(n int) func([]byte) error {
	return func(b []byte) error {
		var v []json.RawMessage
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return wantLen(len(v), n)
	}
}

func lines(n int) func([]byte) error {
	return func(b []byte) error {
		got := 0
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var v []float32
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				return fmt.Errorf("line %d: %w", got+1, err)
			}
			got++
		}
		if err := sc.Err(); err != nil {
			return err
		}
		return wantLen(got, n)
	}
}

func wantLen(got, want int) error {
	if got != want {
		return fmt.Errorf("%d results for %d inputs", got, want)
	}
	return nil
}

// outcome is what one request got: ok (a right answer or an expected
// refusal), or the reason it is an unexpected error.
type outcome struct {
	status int
	err    error
}

func send(ctx context.Context, client *http.Client, base string, r request) outcome {
	req, err := http.NewRequestWithContext(ctx, r.method, base+r.path, bytes.NewReader(r.body))
	if err != nil {
		return outcome{err: err}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcome{status: resp.StatusCode, err: fmt.Errorf("read answer: %w", err)}
	}
	switch ok := resp.StatusCode >= 200 && resp.StatusCode < 300; {
	case r.bad && resp.StatusCode >= 400 && resp.StatusCode < 500:
		return outcome{status: resp.StatusCode}
	case r.bad:
		return outcome{status: resp.StatusCode, err: fmt.Errorf("status %d, want a 4xx", resp.StatusCode)}
	case !ok:
		return outcome{status: resp.StatusCode, err: fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))}
	case r.check != nil:
		if err := r.check(body); err != nil {
			return outcome{status: resp.StatusCode, err: err}
		}
	}
	return outcome{status: resp.StatusCode}
}

type routeCount struct{ ok, refused, unexpected int }

type rssSample struct {
	at  time.Duration
	kib int
}

type report struct {
	pid        int
	start, end time.Time

	mu        sync.Mutex
	routes    map[string]*routeCount
	firstErrs []string
	rss       []rssSample
}

func (r *report) record(req request, o outcome) {
	if errors.Is(o.err, context.DeadlineExceeded) || errors.Is(o.err, context.Canceled) {
		return // cut off by the end of the run
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.routes[req.name]
	if c == nil {
		c = &routeCount{}
		r.routes[req.name] = c
	}
	switch {
	case o.err != nil:
		c.unexpected++
		if len(r.firstErrs) < 10 {
			r.firstErrs = append(r.firstErrs, fmt.Sprintf("%s: %v", req.name, o.err))
		}
	case req.bad:
		c.refused++
	default:
		c.ok++
	}
}

func (r *report) sampleRSS(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if kib, err := residentKiB(r.pid); err == nil {
			r.mu.Lock()
			r.rss = append(r.rss, rssSample{at: time.Since(r.start), kib: kib})
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// residentKiB reads VmRSS from /proc/PID/status.
func residentKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func (r *report) unexpected() int {
	n := 0
	for _, c := range r.routes {
		n += c.unexpected
	}
	return n
}

// afterWarmup gives the RSS samples from the end of the warm-up on, the
// first of them the reference.
func (r *report) afterWarmup(warmup time.Duration) []rssSample {
	for i, s := range r.rss {
		if s.at >= warmup {
			return r.rss[i:]
		}
	}
	return nil
}

// growth is the RSS change (percent) from the end of the warm-up to the end.
func (r *report) growth(warmup time.Duration) float64 {
	s := r.afterWarmup(warmup)
	if len(s) < 2 {
		return 0
	}
	return 100 * float64(s[len(s)-1].kib-s[0].kib) / float64(s[0].kib)
}

func (r *report) print(w io.Writer, cfg config) {
	mib := func(kib int) float64 { return float64(kib) / 1024 }
	fmt.Fprintf(w, "soak: %s serve --quantize %s, %d clients, %s (warm-up %s), RSS every %s\n",
		cfg.binary, cfg.quantize, cfg.clients, r.end.Sub(r.start).Round(time.Second), cfg.warmup, cfg.sample)
	names := make([]string, 0, len(r.routes))
	for k := range r.routes {
		names = append(names, k)
	}
	slices.Sort(names)
	var tot routeCount
	fmt.Fprintln(w, "| request | answered | refused as expected (4xx) | unexpected |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, k := range names {
		c := r.routes[k]
		fmt.Fprintf(w, "| %s | %d | %d | %d |\n", k, c.ok, c.refused, c.unexpected)
		tot.ok, tot.refused, tot.unexpected = tot.ok+c.ok, tot.refused+c.refused, tot.unexpected+c.unexpected
	}
	fmt.Fprintf(w, "| all | %d | %d | %d |\n", tot.ok, tot.refused, tot.unexpected)
	for _, e := range r.firstErrs {
		fmt.Fprintln(w, "  error:", e)
	}
	after := r.afterWarmup(cfg.warmup)
	if len(after) < 2 {
		fmt.Fprintln(w, "RSS: too few samples after the warm-up")
		return
	}
	lo, hi := after[0].kib, after[0].kib
	for _, s := range after {
		lo, hi = min(lo, s.kib), max(hi, s.kib)
	}
	fmt.Fprintf(w, "RSS (MiB): start %.0f, end of warm-up %.0f, after it min %.0f max %.0f, end %.0f: growth %+.2f%% (%d samples)\n",
		mib(r.rss[0].kib), mib(after[0].kib), mib(lo), mib(hi), mib(after[len(after)-1].kib), r.growth(cfg.warmup), len(r.rss))
	fmt.Fprint(w, "RSS by minute (MiB):")
	next := time.Duration(0)
	for _, s := range r.rss {
		if s.at >= next {
			fmt.Fprintf(w, " %s %.0f", s.at.Round(time.Second), mib(s.kib))
			next += time.Minute
		}
	}
	fmt.Fprintln(w)
}
