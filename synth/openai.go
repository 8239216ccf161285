package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// OpenAI talks to an OpenAI-compatible /v1/chat/completions server
// (llama.cpp's server, vLLM, Ollama, OpenAI). It asks for JSON-schema output
// first; a server that refuses that request shape (400 or 422) is asked with
// a bare JSON-object response format, then with the prompt's JSON
// instructions alone, and the shape that worked is kept for later requests.
// llama-cpp-python's server refuses json_schema with HTTP 500 naming
// response_format, which counts as a refusal too.
type OpenAI struct {
	// BaseURL is the server's root or its /v1 (both work).
	BaseURL string
	// ModelName is sent as "model".
	ModelName string
	// APIKey, when set, is sent as a bearer token; it is never logged.
	APIKey      string
	Temperature float64
	MaxTokens   int
	HTTP        *http.Client

	mode atomic.Int32 // responseSchema, responseObject or responsePlain
}

const (
	responseSchema int32 = iota
	responseObject
	responsePlain
)

// Model implements LLM.
func (c *OpenAI) Model() string { return c.ModelName }

// QuestionsSchema is the JSON schema of an answer with n questions.
func QuestionsSchema(n int) map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"questions": map[string]any{
				"type": "array", "items": map[string]any{"type": "string"},
				"minItems": n, "maxItems": n,
			},
		},
		"required":             []string{"questions"},
		"additionalProperties": false,
	}
}

func (c *OpenAI) endpoint() string {
	u := strings.TrimRight(c.BaseURL, "/")
	if !strings.HasSuffix(u, "/v1") {
		u += "/v1"
	}
	return u + "/chat/completions"
}

// Chat implements LLM.
func (c *OpenAI) Chat(ctx context.Context, r Request) (Reply, error) {
	for {
		mode := c.mode.Load()
		rep, status, err := c.post(ctx, r, mode)
		if err != nil && mode < responsePlain && rejectsFormat(status, err) {
			c.mode.CompareAndSwap(mode, mode+1)
			continue
		}
		return rep, err
	}
}

func (c *OpenAI) post(ctx context.Context, r Request, mode int32) (Reply, int, error) {
	body := map[string]any{
		"model": c.ModelName,
		"messages": []map[string]string{
			{"role": "system", "content": r.System},
			{"role": "user", "content": r.User},
		},
		"temperature": c.Temperature,
		"stream":      false,
	}
	if c.MaxTokens > 0 {
		body["max_tokens"] = c.MaxTokens
	}
	switch mode {
	case responseSchema:
		body["response_format"] = map[string]any{"type": "json_schema",
			"json_schema": map[string]any{"name": "questions", "strict": true, "schema": QuestionsSchema(r.N)}}
	case responseObject:
		// llama.cpp's servers read "schema" here; others ignore it.
		body["response_format"] = map[string]any{"type": "json_object", "schema": QuestionsSchema(r.N)}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Reply{}, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(), bytes.NewReader(b))
	if err != nil {
		return Reply{}, 0, fmt.Errorf("openai: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Reply{}, 0, ctx.Err()
		}
		// Connection refused, reset, timeout: the server may come back.
		return Reply{}, 0, &RetryableError{Err: fmt.Errorf("openai: %s: %w", c.endpoint(), stripURLError(err))}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Reply{}, resp.StatusCode, &RetryableError{Err: fmt.Errorf("openai: reading the answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("openai: %s: HTTP %d: %s", c.endpoint(), resp.StatusCode, truncate(strings.TrimSpace(string(raw)), 300))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return Reply{}, resp.StatusCode, &RetryableError{Err: err, After: retryAfter(resp.Header.Get("Retry-After"))}
		}
		return Reply{}, resp.StatusCode, err
	}
	var out struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return Reply{}, resp.StatusCode, malformed("the server's response is not chat-completion JSON: %s", truncate(string(raw), 120))
	}
	rep := Reply{Model: out.Model, InputTokens: out.Usage.PromptTokens, OutputTokens: out.Usage.CompletionTokens}
	if len(out.Choices) == 0 || out.Choices[0].Message.Content == nil {
		return rep, resp.StatusCode, malformed("the response has no message content")
	}
	rep.Text = *out.Choices[0].Message.Content
	return rep, resp.StatusCode, nil
}

// rejectsFormat reports an error answer to a request's response_format: 400
// or 422, or any status whose message names response_format (llama-cpp-python
// answers a response_format type it does not know with HTTP 500).
func rejectsFormat(status int, err error) bool {
	if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		return true
	}
	return status != 0 && strings.Contains(err.Error(), "response_format")
}

// retryAfter reads a Retry-After of seconds (HTTP dates are ignored).
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// stripURLError keeps a *url.Error's cause: its message repeats the URL,
// which the caller already names.
func stripURLError(err error) error {
	var u interface{ Unwrap() error }
	if errors.As(err, &u) && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}
