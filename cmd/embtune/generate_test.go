package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
)

var generateDocs = map[string]string{
	"apt.txt": "APT is the Advanced Package Tool, an interface to the Debian packaging system which provides the apt-get program.\n\n" +
		"The stable distribution contains the latest officially released version of Debian, updated only for security and important corrections.",
	"dpkg.md":   "# dpkg\n\nThe dpkg program installs, removes and provides information about .deb packages. It does not download packages.",
	"empty.txt": "",
}

// chatStub answers every chunk with two questions: one built from the
// chunk's first words, and one that is the same for every chunk.
func chatStub(t *testing.T) *httptest.Server {
	re := regexp.MustCompile(`(?s)"""\n(.*)\n"""`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		m := re.FindStringSubmatch(body.Messages[len(body.Messages)-1].Content)
		if m == nil {
			http.Error(w, "no passage", 400)
			return
		}
		words := strings.Fields(m[1])
		q1 := "What does this say: " + strings.Join(words[:min(8, len(words))], " ") + "?"
		qs, _ := json.Marshal(map[string]any{"questions": []string{q1, "What is this passage about?"}})
		json.NewEncoder(w).Encode(map[string]any{"model": "stub-model",
			"choices": []any{map[string]any{"message": map[string]any{"content": string(qs)}}},
			"usage":   map[string]any{"prompt_tokens": 50, "completion_tokens": 10}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDataGenerate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	docs := filepath.Join(dir, "docs")
	require.NoError(t, os.Mkdir(docs, 0o755))
	for name, text := range generateDocs {
		require.NoError(t, os.WriteFile(filepath.Join(docs, name), []byte(text), 0o644))
	}
	srv := chatStub(t)
	out := filepath.Join(dir, "pairs.jsonl")
	args := []string{"data", "generate", "--model", modelDir(t), "--docs", docs, "--output", out,
		"--llm-url", srv.URL, "--llm-model", "stub", "--questions-per-chunk", "2", "--chunk-size", "32",
		"--filter-top-k", "1", "--device", "cpu"}
	code, stdout, stderr := runCLI(ctx, args, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "chunks 3 (asked now 3, from earlier runs 0, left 0)")
	assert.Contains(t, stdout, "questions generated 6")
	var rt, dup, kept int
	_, err := fmt.Sscanf(stdout[strings.Index(stdout, "removed by round trip"):], "removed by round trip (top 1) %d, removed as near duplicates %d, kept %d", &rt, &dup, &kept)
	require.NoError(t, err, stdout)
	assert.Equal(t, 6, rt+dup+kept)
	assert.GreaterOrEqual(t, rt+dup, 2, "the question asked of every chunk stays once at most")

	pairs, err := dataset.Load(out)
	require.NoError(t, err)
	assert.Len(t, pairs, kept)
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var p struct{ Anchor, Positive, Chunk, Model string }
		require.NoError(t, json.Unmarshal([]byte(line), &p))
		assert.Regexp(t, `^(apt\.txt|dpkg\.md)#\d+$`, p.Chunk)
		assert.Equal(t, "stub-model", p.Model)
		assert.NotEmpty(t, p.Positive)
	}

	// Again on the same state: nothing is asked, the same pairs come out.
	srv.Close()
	code, stdout, stderr = runCLI(ctx, args, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "asked now 0, from earlier runs 3")
	again, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, string(raw), string(again))
}

func TestDataGenerateErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + l.Addr().String()
	l.Close()

	bad := filepath.Join(dir, "latin1.txt")
	require.NoError(t, os.WriteFile(bad, []byte("caf\xe9 cr\xe8me"), 0o644))
	code, _, stderr := runCLI(ctx, []string{"data", "generate", "--model", modelDir(t), "--docs", bad, "--output", filepath.Join(dir, "o.jsonl"), "--llm-url", deadURL}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "latin1.txt")
	assert.Contains(t, stderr, "UTF-8")

	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	code, _, stderr = runCLI(ctx, []string{"data", "generate", "--model", modelDir(t), "--docs", empty, "--output", filepath.Join(dir, "o.jsonl"), "--llm-url", deadURL}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no documents with text")

	good := filepath.Join(dir, "good.txt")
	require.NoError(t, os.WriteFile(good, []byte("Some text about packages."), 0o644))
	t.Setenv("OPENAI_API_KEY", "sk-must-not-appear")
	out := filepath.Join(dir, "o.jsonl")
	code, _, stderr = runCLI(ctx, []string{"data", "generate", "--model", modelDir(t), "--docs", good, "--output", out, "--llm-url", deadURL, "--max-attempts", "1"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "connection refused")
	assert.Contains(t, stderr, "run the same command again to continue")
	assert.NotContains(t, stderr, "sk-must-not-appear")
	state, err := os.ReadFile(out + ".state.jsonl")
	require.NoError(t, err)
	assert.NotContains(t, string(state), "sk-must-not-appear")
	assert.NoFileExists(t, out)

	code, _, stderr = runCLI(ctx, []string{"data", "generate", "--docs", good, "--output", out, "--llm-backend", "vertex"}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "want openai or bedrock")
}

// TestDataGenerateHelper is the process TestDataGenerateKilled kills: it
// runs `embtune data generate` with the arguments in EMBTUNE_TEST_GENERATE.
func TestDataGenerateHelper(t *testing.T) {
	raw := os.Getenv("EMBTUNE_TEST_GENERATE")
	if raw == "" {
		return // not started by TestDataGenerateKilled
	}
	var args []string
	require.NoError(t, json.Unmarshal([]byte(raw), &args))
	code, _, stderr := runCLI(context.Background(), args, "")
	require.Equal(t, 0, code, stderr)
}

// A run killed (SIGKILL) while a request is in flight continues on the next
// run: no chunk with an answer is asked again, and the pairs equal those of
// an uninterrupted run.
func TestDataGenerateKilled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.txt")
	var text []string
	for i := range 8 {
		text = append(text, fmt.Sprintf("Paragraph %d explains topic number %d in a few words.", i, i))
	}
	require.NoError(t, os.WriteFile(doc, []byte(strings.Join(text, "\n\n")), 0o644))

	re := regexp.MustCompile(`(?s)"""\n(.*)\n"""`)
	var mu sync.Mutex
	calls := map[string]int{}
	inFlight := make(chan struct{})
	block := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		chunk := re.FindStringSubmatch(body.Messages[len(body.Messages)-1].Content)[1]
		mu.Lock()
		calls[chunk]++
		stall := block && len(calls) == 4
		if stall {
			block = false
		}
		mu.Unlock()
		if stall {
			close(inFlight)
			<-r.Context().Done() // until the client dies
			return
		}
		qs, _ := json.Marshal(map[string]any{"questions": []string{"Which paragraph is: " + chunk + "?"}})
		json.NewEncoder(w).Encode(map[string]any{"model": "stub-model",
			"choices": []any{map[string]any{"message": map[string]any{"content": string(qs)}}}})
	}))
	defer srv.Close()
	args := func(out string) []string {
		return []string{"data", "generate", "--model", modelDir(t), "--docs", doc, "--output", out, "--llm-url", srv.URL,
			"--questions-per-chunk", "1", "--chunk-size", "16", "--chunk-overlap", "0", "--concurrency", "1", "--filter-top-k", "0"}
	}
	out := filepath.Join(dir, "pairs.jsonl")
	enc, _ := json.Marshal(args(out))
	cmd := exec.Command(os.Args[0], "-test.run=^TestDataGenerateHelper$")
	cmd.Env = append(os.Environ(), "EMBTUNE_TEST_GENERATE="+string(enc))
	require.NoError(t, cmd.Start())
	<-inFlight
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	assert.NoFileExists(t, out)

	code, stdout, stderr := runCLI(ctx, args(out), "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "chunks 8 (asked now 5, from earlier runs 3, left 0)")
	mu.Lock()
	asked := len(calls)
	for c, n := range calls {
		want := 1
		if strings.HasPrefix(c, "Paragraph 3 ") {
			want = 2 // in flight when the process was killed
		}
		assert.Equal(t, want, n, c)
	}
	mu.Unlock()
	assert.Equal(t, 8, asked)

	whole := filepath.Join(dir, "whole.jsonl")
	code, _, stderr = runCLI(ctx, args(whole), "")
	require.Equal(t, 0, code, stderr)
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(whole)
	assert.Equal(t, string(b), string(a))
	assert.Len(t, strings.Split(strings.TrimSpace(string(a)), "\n"), 8)
}
