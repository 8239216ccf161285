//go:build llm

package synth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The passages are answers of Debian's FAQ (debian-faq 11.1, GPL-2+).
var faqAnswers = []Chunk{
	{ID: "faq#apt", Text: "APT is the Advanced Package Tool, an advanced interface to the Debian packaging system which provides the apt-get program. It provides commandline tools for searching and managing packages, and for querying information about them, as well as low-level access to all features of the libapt-pkg library."},
	{ID: "faq#stable", Text: "Debian has three major distributions: stable, testing and unstable. The stable distribution contains the latest officially released version, and it is updated only for security and important corrections. It is the recommended choice for servers."},
	{ID: "faq#dpkg", Text: "The dpkg program is the low-level tool that installs, removes and provides information about .deb packages. It does not download packages and does not resolve dependencies; higher-level tools such as apt do that and call dpkg to do the installation."},
}

// llamaServer starts llama.cpp's OpenAI-compatible server (make deps-llm) on
// loopback with one thread and returns its URL; it is stopped when the test
// ends. It fails, naming make deps-llm, when the server or model is missing.
func llamaServer(t *testing.T) string {
	t.Helper()
	python := os.Getenv("EMBTUNE_LLM_PYTHON")
	if python == "" {
		python, _ = filepath.Abs("../third_party/llm-venv/bin/python")
	}
	model := os.Getenv("EMBTUNE_LLM_GGUF")
	if model == "" {
		model, _ = filepath.Abs("../third_party/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
	}
	for _, p := range []string{python, model} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: run `make deps-llm` first (llama.cpp's server and the GGUF model)", err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(python, "-m", "llama_cpp.server", "--model", model, "--model_alias", "qwen2.5-coder-0.5b-instruct",
		"--host", "127.0.0.1", "--port", fmt.Sprint(port), "--n_threads", "1", "--n_ctx", "4096")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// Uvicorn prints "Uvicorn running on" once it listens.
	ready := make(chan error, 1)
	var tail bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if tail.Len() < 1<<16 {
				tail.WriteString(line + "\n")
			}
			if strings.Contains(line, "Uvicorn running on") {
				ready <- nil
				io.Copy(io.Discard, stderr)
				return
			}
		}
		ready <- fmt.Errorf("llama.cpp server exited before listening:\n%s", tail.String())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("llama.cpp server did not start in 5 minutes:\n%s", tail.String())
	}
	return fmt.Sprintf("http://127.0.0.1:%d/v1", port)
}

func TestLLM(t *testing.T) {
	url := llamaServer(t)
	t.Run("OpenAI", func(t *testing.T) {
		llm := &OpenAI{BaseURL: url, ModelName: "qwen2.5-coder-0.5b-instruct", Temperature: 0.7, MaxTokens: 300}
		checkRealRun(t, llm, "openai")
		t.Logf("response format the server took: %d (0 json_schema, 1 json_object, 2 prompt only)", llm.mode.Load())
	})
	t.Run("BedrockBridge", func(t *testing.T) {
		bridge := httptest.NewServer(converseBridge(t, url))
		defer bridge.Close()
		b := NewBedrock(testAWSConfig(), bridge.URL, "test.model-v1:0")
		b.MaxTokens = 300
		checkRealRun(t, b, "bedrock")
	})
}

// checkRealRun generates 3 questions for each FAQ answer, then runs again on
// the same state file, which must ask nothing.
func checkRealRun(t *testing.T, llm LLM, backend string) {
	path := filepath.Join(t.TempDir(), "state.jsonl")
	st := openState(t, path)
	p, _ := LoadPrompt("")
	o := Options{Questions: 3, Prompt: p, Concurrency: 1, MaxAttempts: 3, Backoff: time.Second, Backend: backend}
	s, err := Generate(context.Background(), llm, faqAnswers, st, o)
	if err != nil {
		t.Fatal(err)
	}
	pairs := Pairs(faqAnswers, st)
	for _, p := range pairs {
		t.Logf("%s: %s", p.Chunk, p.Anchor)
	}
	secs := s.Elapsed.Seconds()
	t.Logf("%s: %d chunks done, %d skipped, %d malformed answers, %d requests; %d questions in %.1f s = %.2f questions/s; tokens in %d out %d = %.1f output tokens/s",
		backend, s.Done, s.Skipped, s.Malformed, s.Requests, len(pairs), secs, float64(len(pairs))/secs, s.InputTokens, s.OutputTokens, float64(s.OutputTokens)/secs)
	if s.Done+s.Skipped != len(faqAnswers) || s.Done < 2 {
		t.Errorf("stats %+v: want at least 2 of %d chunks answered", s, len(faqAnswers))
	}
	if s.OutputTokens == 0 || s.InputTokens == 0 {
		t.Errorf("no token counts: %+v", s)
	}
	s2, err := Generate(context.Background(), llm, faqAnswers, st, o)
	if err != nil || s2.Requests != 0 || s2.Resumed != len(faqAnswers) {
		t.Errorf("second run on the same state: %+v, %v", s2, err)
	}
}

// converseBridge speaks Bedrock's Converse JSON (checking the SigV4
// signature) and forwards each request to the OpenAI-compatible server at
// url, so the Bedrock backend is tested end to end through the SDK.
func converseBridge(t *testing.T, url string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if err := checkSigV4(r, raw); err != nil {
			t.Error(err)
			http.Error(w, err.Error(), 403)
			return
		}
		var in struct {
			Messages []struct {
				Role    string `json:"role"`
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"messages"`
			System []struct {
				Text string `json:"text"`
			} `json:"system"`
			InferenceConfig struct {
				MaxTokens   int     `json:"maxTokens"`
				Temperature float64 `json:"temperature"`
			} `json:"inferenceConfig"`
			OutputConfig *struct {
				TextFormat struct {
					Structure struct {
						JSONSchema struct {
							Schema string `json:"schema"`
						} `json:"jsonSchema"`
					} `json:"structure"`
				} `json:"textFormat"`
			} `json:"outputConfig"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var msgs []map[string]string
		for _, s := range in.System {
			msgs = append(msgs, map[string]string{"role": "system", "content": s.Text})
		}
		for _, m := range in.Messages {
			var text []string
			for _, c := range m.Content {
				text = append(text, c.Text)
			}
			msgs = append(msgs, map[string]string{"role": m.Role, "content": strings.Join(text, "")})
		}
		body := map[string]any{"messages": msgs, "max_tokens": in.InferenceConfig.MaxTokens, "temperature": in.InferenceConfig.Temperature}
		if in.OutputConfig != nil {
			var schema any
			json.Unmarshal([]byte(in.OutputConfig.TextFormat.Structure.JSONSchema.Schema), &schema)
			body["response_format"] = map[string]any{"type": "json_object", "schema": schema}
		}
		b, _ := json.Marshal(body)
		resp, err := http.Post(url+"/chat/completions", "application/json", bytes.NewReader(b))
		if err != nil {
			w.Header().Set("X-Amzn-Errortype", "ServiceUnavailableException")
			http.Error(w, `{"message":"`+err.Error()+`"}`, 503)
			return
		}
		defer resp.Body.Close()
		var out struct {
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
			Usage struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Choices) == 0 {
			w.Header().Set("X-Amzn-Errortype", "InternalServerException")
			http.Error(w, `{"message":"bad upstream answer"}`, 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": []any{map[string]any{"text": out.Choices[0].Message.Content}}}},
			"stopReason": "end_turn",
			"usage":      map[string]any{"inputTokens": out.Usage.PromptTokens, "outputTokens": out.Usage.CompletionTokens, "totalTokens": out.Usage.PromptTokens + out.Usage.CompletionTokens},
			"metrics":    map[string]any{"latencyMs": 1},
		})
	})
}
