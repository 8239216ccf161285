package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

const (
	testAccessKey = "AKIDEXAMPLETEST"
	testSecret    = "wJalrXUtnFEMI-secret-never-logged"
)

func testAWSConfig() aws.Config {
	return aws.Config{
		Region:           "us-west-2",
		Credentials:      credentials.NewStaticCredentialsProvider(testAccessKey, testSecret, ""),
		RetryMaxAttempts: 1,
	}
}

// checkSigV4 recomputes the request's SigV4 signature with the secret key
// and compares it to the one the client sent.
func checkSigV4(r *http.Request, body []byte) error {
	got := r.Header.Get("Authorization")
	if !strings.HasPrefix(got, "AWS4-HMAC-SHA256 Credential="+testAccessKey+"/") || !strings.Contains(got, "/us-west-2/bedrock/aws4_request") {
		return errors.New("Authorization is not SigV4 for bedrock in us-west-2: " + got)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for k, v := range r.Header {
		if k != "Authorization" {
			req.Header[k] = v
		}
	}
	signed := got[strings.Index(got, "SignedHeaders=")+len("SignedHeaders=") : strings.Index(got, ", Signature=")]
	for k := range req.Header {
		if !strings.Contains(";"+signed+";", ";"+strings.ToLower(k)+";") {
			req.Header.Del(k)
		}
	}
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", "us-west-2", when); err != nil {
		return err
	}
	if want := req.Header.Get("Authorization"); want != got {
		return errors.New("signature mismatch:\n got " + got + "\nwant " + want)
	}
	return nil
}

type converseServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	errs   []error
	// fail, when set, answers a request instead of the good answer.
	fail func(w http.ResponseWriter, body map[string]any) bool
}

func newConverseServer(t *testing.T) *converseServer {
	s := &converseServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		err := json.Unmarshal(raw, &body)
		if err == nil && r.URL.Path != "/model/test.model-v1:0/converse" {
			err = errors.New("path " + r.URL.Path)
		}
		if err == nil {
			err = checkSigV4(r, raw)
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		if err != nil {
			s.errs = append(s.errs, err)
		}
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if s.fail != nil && s.fail(w, body) {
			return
		}
		n := 2
		if oc, ok := body["outputConfig"].(map[string]any); ok {
			var schema map[string]any
			js := oc["textFormat"].(map[string]any)["structure"].(map[string]any)["jsonSchema"].(map[string]any)
			json.Unmarshal([]byte(js["schema"].(string)), &schema)
			n = int(schema["properties"].(map[string]any)["questions"].(map[string]any)["maxItems"].(float64))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": []any{map[string]any{"text": questionsFor("bedrock", n)}}}},
			"stopReason": "end_turn",
			"usage":      map[string]any{"inputTokens": 42, "outputTokens": 17, "totalTokens": 59},
			"metrics":    map[string]any{"latencyMs": 5},
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func TestBedrockConverseShapeAndSigning(t *testing.T) {
	srv := newConverseServer(t)
	b := NewBedrock(testAWSConfig(), srv.URL, "test.model-v1:0")
	b.MaxTokens, b.Temperature = 256, 0.3
	rep, err := b.Chat(context.Background(), fastOptions().Prompt.Render("a passage", 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range srv.errs {
		t.Error(e)
	}
	if rep.InputTokens != 42 || rep.OutputTokens != 17 || rep.Model != "test.model-v1:0" {
		t.Errorf("reply %+v", rep)
	}
	if _, err := ParseQuestions(rep.Text, 2); err != nil {
		t.Error(err)
	}
	body := srv.bodies[0]
	msgs := body["messages"].([]any)
	m := msgs[0].(map[string]any)
	text := m["content"].([]any)[0].(map[string]any)["text"].(string)
	if m["role"] != "user" || !strings.Contains(text, "a passage") {
		t.Errorf("messages %v", msgs)
	}
	if sys := body["system"].([]any)[0].(map[string]any)["text"]; sys != DefaultSystem {
		t.Errorf("system %v", sys)
	}
	ic := body["inferenceConfig"].(map[string]any)
	if ic["maxTokens"] != 256.0 || ic["temperature"].(float64) < 0.29 || ic["temperature"].(float64) > 0.31 {
		t.Errorf("inferenceConfig %v", ic)
	}
	tf := body["outputConfig"].(map[string]any)["textFormat"].(map[string]any)
	if tf["type"] != "json_schema" {
		t.Errorf("outputConfig %v", tf)
	}
}

// Throttling is retried with backoff; a model that refuses outputConfig
// (ValidationException) is asked without it; the secret key appears in no
// state record or error.
func TestBedrockThrottlingAndFallback(t *testing.T) {
	srv := newConverseServer(t)
	var calls int
	srv.fail = func(w http.ResponseWriter, body map[string]any) bool {
		calls++
		w.Header().Set("Content-Type", "application/json")
		if _, ok := body["outputConfig"]; ok {
			w.Header().Set("X-Amzn-Errortype", "ValidationException")
			w.WriteHeader(400)
			w.Write([]byte(`{"message":"This model doesn't support the outputConfig field."}`))
			return true
		}
		if calls <= 4 {
			w.Header().Set("X-Amzn-Errortype", "ThrottlingException")
			w.WriteHeader(429)
			w.Write([]byte(`{"message":"Too many requests, please wait before trying again."}`))
			return true
		}
		return false
	}
	path := filepath.Join(t.TempDir(), "s.jsonl")
	st := openState(t, path)
	o := fastOptions()
	o.Concurrency, o.MaxAttempts = 1, 5
	s, err := Generate(context.Background(), NewBedrock(testAWSConfig(), srv.URL, "test.model-v1:0"), testChunks(2), st, o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Done != 2 || s.Retries != 3 {
		t.Errorf("stats %+v", s)
	}
	for _, e := range srv.errs {
		t.Error(e)
	}
	raw, _ := io.ReadAll(must(t, path))
	if strings.Contains(string(raw), testSecret) || !strings.Contains(string(raw), "ThrottlingException") {
		t.Error("the state file holds the secret key or lacks the throttling answers")
	}
}

func TestBedrockPermanentError(t *testing.T) {
	srv := newConverseServer(t)
	srv.fail = func(w http.ResponseWriter, _ map[string]any) bool {
		w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
		w.WriteHeader(403)
		w.Write([]byte(`{"message":"You don't have access to the model with the specified model ID."}`))
		return true
	}
	st := openState(t, filepath.Join(t.TempDir(), "s.jsonl"))
	_, err := Generate(context.Background(), NewBedrock(testAWSConfig(), srv.URL, "test.model-v1:0"), testChunks(1), st, fastOptions())
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("err %v", err)
	}
}
