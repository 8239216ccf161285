package synth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseQuestions(t *testing.T) {
	good := []string{"What is a?", "How does b work?"}
	for _, text := range []string{
		`{"questions": ["What is a?", "How does b work?"]}`,
		"```json\n{\"questions\": [\"What is a?\", \"How  does b work?\"]}\n```",
		`Here you go: ["What is a?", "How does b work?"]`,
	} {
		qs, err := ParseQuestions(text, 2)
		if err != nil || !reflect.DeepEqual(qs, good) {
			t.Errorf("ParseQuestions(%q) = %q, %v; want %q", text, qs, err, good)
		}
	}
	for text, want := range map[string]string{
		``:                                  "empty answer",
		`I cannot help with that.`:          "not JSON",
		`{"questions": ["only one?"]}`:      "1 questions, asked for 2",
		`{"questions": ["a?", "b?", "c?"]}`: "3 questions, asked for 2",
		`{"questions": ["a?", 3]}`:          "not a string",
		`{"questions": ["a?", "  "]}`:       "question 2 is empty",
		`{"questions": ["Same?", "same?"]}`: "repeats",
		`{"answers": ["a?", "b?"]}`:         `no "questions" array`,
		`{"questions": ["a?", "b?"`:         "no JSON object",
	} {
		_, err := ParseQuestions(text, 2)
		var bad *MalformedError
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseQuestions(%q): %v; want a MalformedError with %q", text, err, want)
		}
	}
}

func TestLoadPrompt(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.txt")
	os.WriteFile(p, []byte("Ask {n} questions about: {chunk}"), 0o644)
	pr, err := LoadPrompt(p)
	if err != nil {
		t.Fatal(err)
	}
	if r := pr.Render("the text", 4); r.User != "Ask 4 questions about: the text" || r.N != 4 || r.System != DefaultSystem {
		t.Errorf("Render: %+v", r)
	}
	os.WriteFile(p, []byte("no placeholder"), 0o644)
	if _, err := LoadPrompt(p); err == nil || !strings.Contains(err.Error(), "{chunk}") {
		t.Errorf("a prompt without {chunk}: %v", err)
	}
	os.WriteFile(p, []byte("{chunk}\xff"), 0o644)
	if _, err := LoadPrompt(p); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("a non-UTF-8 prompt: %v", err)
	}
	def, _ := LoadPrompt("")
	if r := def.Render("x", 3); !strings.Contains(r.User, "exactly 3 questions") || !strings.Contains(r.User, "language of the passage") {
		t.Errorf("default prompt: %q", r.User)
	}
}

// chatServer is an OpenAI-compatible endpoint whose answers come from
// answer(chunk text, call number for that chunk). It counts the calls per
// chunk.
type chatServer struct {
	*httptest.Server
	mu     sync.Mutex
	calls  map[string]int
	bodies []map[string]any
}

var passage = regexp.MustCompile(`(?s)"""\n(.*)\n"""`)

func newChatServer(t *testing.T, answer func(w http.ResponseWriter, chunk string, call int, body map[string]any)) *chatServer {
	s := &chatServer{calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
			http.Error(w, "not found", 404)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		msgs := body["messages"].([]any)
		user := msgs[len(msgs)-1].(map[string]any)["content"].(string)
		m := passage.FindStringSubmatch(user)
		if m == nil {
			http.Error(w, "no passage", 400)
			return
		}
		s.mu.Lock()
		s.calls[m[1]]++
		call := s.calls[m[1]]
		s.bodies = append(s.bodies, body)
		s.mu.Unlock()
		answer(w, m[1], call, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func reply(w http.ResponseWriter, content string) {
	json.NewEncoder(w).Encode(map[string]any{
		"model":   "test-model",
		"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": content}, "finish_reason": "stop"}},
		"usage":   map[string]any{"prompt_tokens": 100, "completion_tokens": 20},
	})
}

// questionsFor is a deterministic good answer for a chunk.
func questionsFor(chunk string, n int) string {
	qs := make([]string, n)
	for i := range qs {
		qs[i] = fmt.Sprintf("Question %d about %s?", i+1, chunk)
	}
	b, _ := json.Marshal(map[string]any{"questions": qs})
	return string(b)
}

func testChunks(n int) []Chunk {
	cs := make([]Chunk, n)
	for i := range cs {
		cs[i] = Chunk{ID: fmt.Sprintf("doc#%d", i), Text: fmt.Sprintf("chunk number %d", i)}
	}
	return cs
}

func fastOptions() Options {
	p, _ := LoadPrompt("")
	return Options{Questions: 2, Prompt: p, Concurrency: 3, MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Backend: "openai"}
}

func openState(t *testing.T, path string) *State {
	t.Helper()
	st, err := OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestOpenAIRequestShape(t *testing.T) {
	var auth atomic.Value
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, _ int, _ map[string]any) {
		reply(w, questionsFor(chunk, 2))
	})
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		inner.ServeHTTP(w, r)
	})
	c := &OpenAI{BaseURL: srv.URL, ModelName: "m1", APIKey: "sk-test-secret", Temperature: 0.5, MaxTokens: 300}
	rep, err := c.Chat(context.Background(), fastOptions().Prompt.Render("some text", 2))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Model != "test-model" || rep.InputTokens != 100 || rep.OutputTokens != 20 {
		t.Errorf("reply %+v", rep)
	}
	if got := auth.Load(); got != "Bearer sk-test-secret" {
		t.Errorf("Authorization %q", got)
	}
	b := srv.bodies[0]
	if b["model"] != "m1" || b["max_tokens"] != 300.0 || b["temperature"] != 0.5 {
		t.Errorf("body %v", b)
	}
	rf := b["response_format"].(map[string]any)
	schema := rf["json_schema"].(map[string]any)["schema"].(map[string]any)
	items := schema["properties"].(map[string]any)["questions"].(map[string]any)
	if rf["type"] != "json_schema" || items["minItems"] != 2.0 || items["maxItems"] != 2.0 {
		t.Errorf("response_format %v", rf)
	}
	msgs := b["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[1].(map[string]any)["role"] != "user" {
		t.Errorf("messages %v", msgs)
	}
}

// A server that refuses json_schema, then json_object, is asked with the
// prompt alone, and later requests start there.
func TestOpenAIResponseFormatFallback(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, _ int, body map[string]any) {
		if rf, ok := body["response_format"].(map[string]any); ok {
			if rf["type"] == "json_schema" {
				// What llama-cpp-python 0.3.36's server answers.
				http.Error(w, `{"error":{"message":"1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\"}"}}`, http.StatusInternalServerError)
				return
			}
			http.Error(w, `{"error":"response_format not supported"}`, http.StatusUnprocessableEntity)
			return
		}
		reply(w, questionsFor(chunk, 2))
	})
	c := &OpenAI{BaseURL: srv.URL + "/v1/", ModelName: "m"}
	p := fastOptions().Prompt
	for i := range 2 {
		if _, err := c.Chat(context.Background(), p.Render(fmt.Sprint("t", i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []string
	for _, b := range srv.bodies {
		k := "plain"
		if rf, ok := b["response_format"].(map[string]any); ok {
			k = rf["type"].(string)
		}
		kinds = append(kinds, k)
	}
	if want := []string{"json_schema", "json_object", "plain", "plain"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("response formats asked %v, want %v", kinds, want)
	}
}

func TestGenerate429Storm(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, call int, _ map[string]any) {
		if call <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		reply(w, questionsFor(chunk, 2))
	})
	st := openState(t, filepath.Join(t.TempDir(), "s.jsonl"))
	chunks := testChunks(5)
	s, err := Generate(context.Background(), &OpenAI{BaseURL: srv.URL, ModelName: "m"}, chunks, st, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s.Done != 5 || s.Retries != 10 || s.Requests != 15 || s.Skipped != 0 {
		t.Errorf("stats %+v", s)
	}
	if s.InputTokens != 500 || s.OutputTokens != 100 {
		t.Errorf("tokens: only successful answers carry usage here: %+v", s)
	}
	if got := len(Pairs(chunks, st)); got != 10 {
		t.Errorf("%d pairs, want 10", got)
	}
}

// A 5xx that never ends stops the run with an error after MaxAttempts; the
// chunks already answered stay in the state file.
func TestGenerateServerDown(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, _ int, _ map[string]any) {
		if chunk == "chunk number 3" {
			http.Error(w, "boom", http.StatusBadGateway)
			return
		}
		reply(w, questionsFor(chunk, 2))
	})
	st := openState(t, filepath.Join(t.TempDir(), "s.jsonl"))
	o := fastOptions()
	o.Concurrency = 1
	_, err := Generate(context.Background(), &OpenAI{BaseURL: srv.URL, ModelName: "m"}, testChunks(6), st, o)
	if err == nil || !strings.Contains(err.Error(), "HTTP 502") || !strings.Contains(err.Error(), "doc#3") {
		t.Fatalf("err %v", err)
	}
	for i := range 3 {
		if _, ok := st.Outcome(fmt.Sprintf("doc#%d", i)); !ok {
			t.Errorf("doc#%d lost", i)
		}
	}
	if _, ok := st.Outcome("doc#3"); ok {
		t.Error("doc#3 has an outcome")
	}
}

func TestGenerateUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	st := openState(t, filepath.Join(t.TempDir(), "s.jsonl"))
	s, err := Generate(context.Background(), &OpenAI{BaseURL: url, ModelName: "m"}, testChunks(2), st, fastOptions())
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("err %v", err)
	}
	if s.Done != 0 || len(st.Done) != 0 {
		t.Errorf("stats %+v, outcomes %v", s, st.Done)
	}
}

// Malformed answers are retried; a chunk that never gets a good one is
// skipped and counted, and the run goes on.
func TestGenerateMalformed(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, call int, _ map[string]any) {
		switch {
		case chunk == "chunk number 0":
			reply(w, "Sure! Here are some questions: 1. What? 2. Why?") // never JSON
		case chunk == "chunk number 1" && call == 1:
			reply(w, `{"questions": ["just one?"]}`) // wrong count, then right
		case chunk == "chunk number 2" && call == 1:
			w.Write([]byte("<html>not a chat completion</html>"))
		default:
			reply(w, questionsFor(chunk, 2))
		}
	})
	st := openState(t, filepath.Join(t.TempDir(), "s.jsonl"))
	s, err := Generate(context.Background(), &OpenAI{BaseURL: srv.URL, ModelName: "m"}, testChunks(4), st, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s.Done != 3 || s.Skipped != 1 || s.Malformed != 5 {
		t.Errorf("stats %+v", s)
	}
	if o, _ := st.Outcome("doc#0"); !o.Skipped {
		t.Errorf("doc#0: %+v", o)
	}
}

// A run stopped part way (a --max-chunks budget, then a cancelled context)
// is continued by the next run on the same state file: no chunk with an
// answer is asked again, and the pairs equal an uninterrupted run's.
func TestGenerateResume(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, _ int, _ map[string]any) {
		reply(w, questionsFor(chunk, 2))
	})
	llm := &OpenAI{BaseURL: srv.URL, ModelName: "m"}
	chunks := testChunks(9)
	path := filepath.Join(t.TempDir(), "s.jsonl")

	o := fastOptions()
	o.MaxChunks = 3
	st := openState(t, path)
	s, err := Generate(context.Background(), llm, chunks, st, o)
	if err != nil || s.Asked != 3 || s.Left != 6 {
		t.Fatalf("first run: %+v, %v", s, err)
	}
	st.Close()

	// Second run: cancelled from inside after two more answers.
	ctx, cancel := context.WithCancel(context.Background())
	var answered atomic.Int32
	stop := &cancelAfter{LLM: llm, n: 2, count: &answered, cancel: cancel}
	o = fastOptions()
	o.Concurrency = 1
	st = openState(t, path)
	if _, err := Generate(ctx, stop, chunks, st, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("second run: %v", err)
	}
	st.Close()
	// A kill during a write leaves half a line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"kind":"done","chunk":"doc#8","questions":["half`)
	f.Close()

	st = openState(t, path)
	s, err = Generate(context.Background(), llm, chunks, st, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s.Resumed != 5 || s.Asked != 4 || s.Done != 4 {
		t.Errorf("third run: %+v", s)
	}
	for c, n := range srv.calls {
		if n != 1 {
			t.Errorf("%q asked %d times", c, n)
		}
	}
	if len(srv.calls) != 9 {
		t.Errorf("%d chunks asked, want 9", len(srv.calls))
	}
	resumed := Pairs(chunks, st)

	st2 := openState(t, filepath.Join(t.TempDir(), "s.jsonl"))
	if _, err := Generate(context.Background(), llm, chunks, st2, fastOptions()); err != nil {
		t.Fatal(err)
	}
	whole := Pairs(chunks, st2)
	if !reflect.DeepEqual(sortedPairs(resumed), sortedPairs(whole)) {
		t.Errorf("resumed run's pairs differ from an uninterrupted run's:\n%v\n%v", resumed, whole)
	}
	// Another prompt on the same state file is refused.
	o = fastOptions()
	o.Questions = 5
	if _, err := Generate(context.Background(), llm, chunks, st, o); err == nil || !strings.Contains(err.Error(), "another prompt") {
		t.Errorf("another N on the same state: %v", err)
	}
}

type cancelAfter struct {
	LLM
	n      int32
	count  *atomic.Int32
	cancel func()
}

func (c *cancelAfter) Chat(ctx context.Context, r Request) (Reply, error) {
	if c.count.Load() >= c.n {
		c.cancel()
		<-ctx.Done()
		return Reply{}, ctx.Err()
	}
	rep, err := c.LLM.Chat(ctx, r)
	c.count.Add(1)
	return rep, err
}

func sortedPairs(p []Pair) []string {
	var out []string
	for _, x := range p {
		out = append(out, x.Chunk+"\x00"+x.Anchor+"\x00"+x.Positive+"\x00"+x.Model)
	}
	sort.Strings(out)
	return out
}

func TestStateRejectsCorruptLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	os.WriteFile(path, []byte("{\"kind\":\"run\"}\nnot json\n{\"kind\":\"run\"}\n"), 0o644)
	if _, err := OpenState(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("corrupt line: %v", err)
	}
}

// The API key goes in the Authorization header only: not in the state file
// nor in an error.
func TestAPIKeyNotLogged(t *testing.T) {
	const key = "sk-very-secret-key"
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, _ int, _ map[string]any) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
	path := filepath.Join(t.TempDir(), "s.jsonl")
	st := openState(t, path)
	_, err := Generate(context.Background(), &OpenAI{BaseURL: srv.URL, ModelName: "m", APIKey: key}, testChunks(1), st, fastOptions())
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("err %v", err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), key) || strings.Contains(err.Error(), key) {
		t.Error("the API key leaked")
	}
}

func TestRoundTripAndNearDuplicates(t *testing.T) {
	chunks := [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	q := [][]float32{
		{0.9, 0.1, 0.42}, // own chunk 0 first
		{0.8, 0.59, 0.1}, // own chunk 1 second
		{0.1, 0.2, 0.97}, // own chunk 0 third
		{0.6, 0.6, 0.53}, // ties: own chunk 1 ties chunk 0
	}
	own := []int{0, 1, 0, 1}
	for k, want := range map[int][]bool{
		1: {true, false, false, true},
		2: {true, true, false, true},
		3: {true, true, true, true},
	} {
		keep, err := RoundTrip(q, own, chunks, k)
		if err != nil || !reflect.DeepEqual(keep, want) {
			t.Errorf("k=%d: %v, %v; want %v", k, keep, err, want)
		}
	}
	if _, err := RoundTrip(q, []int{0, 1, 0, 7}, chunks, 1); err == nil {
		t.Error("a chunk index out of range passed")
	}
	texts := []string{"What is APT?", "what is apt", "How do I upgrade?", "How can I upgrade?", "Other?"}
	vecs := [][]float32{{1, 0}, {1, 0}, {0, 1}, {0.1, 0.995}, {0.6, 0.8}}
	keep, _ := NearDuplicates(texts, vecs, 0.95)
	if want := []bool{true, false, true, false, true}; !reflect.DeepEqual(keep, want) {
		t.Errorf("NearDuplicates %v, want %v", keep, want)
	}
	keep, _ = NearDuplicates(texts, vecs, 2)
	if want := []bool{true, false, true, true, true}; !reflect.DeepEqual(keep, want) {
		t.Errorf("NearDuplicates without embeddings %v, want %v", keep, want)
	}
}

func must(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestProgress(t *testing.T) {
	srv := newChatServer(t, func(w http.ResponseWriter, chunk string, _ int, _ map[string]any) {
		reply(w, questionsFor(chunk, 2))
	})
	var log strings.Builder
	o := fastOptions()
	o.Progress, o.ProgressLines, o.Concurrency = &log, true, 1
	st := openState(t, filepath.Join(t.TempDir(), "s.jsonl"))
	if _, err := Generate(context.Background(), &OpenAI{BaseURL: srv.URL, ModelName: "m"}, testChunks(41), st, o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 21 || !strings.HasPrefix(lines[20], "generate [##############################] 41/41 chunks") || !strings.Contains(lines[20], "tokens in 4100 out 820") {
		t.Errorf("%d progress lines, last %q", len(lines), lines[len(lines)-1])
	}
}
