package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// weightlessModel is a copy of the test model folder without its weights:
// it opens (config, tokenizer) but fails to load.
func weightlessModel(t *testing.T) string {
	t.Helper()
	src := modelDir(t)
	dst := filepath.Join(t.TempDir(), "weightless")
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dst, 0o755))
	for _, e := range entries {
		if e.Name() == "model.safetensors" || e.Name() == "pytorch_model.bin" {
			continue
		}
		abs, err := filepath.Abs(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.Symlink(abs, filepath.Join(dst, e.Name())))
	}
	return dst
}

// TestServeBadModelExits: outside a SageMaker container, serve with a
// model that cannot be read or loaded exits non-zero with the reason, as
// TEI does, instead of answering 503 forever.
func TestServeBadModelExits(t *testing.T) {
	t.Setenv("SAGEMAKER_BASE_DIR", "")
	for _, c := range []struct{ name, model, want string }{
		{"missing folder", filepath.Join(t.TempDir(), "nosuch"), "no such file"},
		{"no weights", weightlessModel(t), "model failed to load"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(context.Background(), []string{"serve", "--model", c.model, "--addr", freeAddr(t)}, "")
			assert.Equal(t, 1, code, stderr)
			assert.Contains(t, stderr, c.want)
		})
	}
}

// TestServeBadModelStaysUpInContainer: as the SageMaker inference
// container (SAGEMAKER_BASE_DIR), or with --stay-up-on-load-failure,
// serve keeps running with a model that fails to load, and /ping answers
// 503 with the reason until it is stopped.
func TestServeBadModelStaysUpInContainer(t *testing.T) {
	bad := weightlessModel(t)
	base := t.TempDir()
	require.NoError(t, os.Symlink(bad, filepath.Join(base, "model")))
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"container", map[string]string{"SAGEMAKER_BASE_DIR": base}, nil},
		{"flag", map[string]string{"SAGEMAKER_BASE_DIR": ""}, []string{"--model", bad, "--stay-up-on-load-failure"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			addr := freeAddr(t)
			t.Setenv("EMBTUNE_ADDR", addr)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan string, 1)
			go func() {
				code, _, stderr := runCLI(ctx, append([]string{"serve"}, c.args...), "")
				done <- fmt.Sprintf("exit %d: %s", code, stderr)
			}()
			var body []byte
			deadline := time.Now().Add(60 * time.Second)
			for {
				resp, err := http.Get("http://" + addr + "/ping")
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusServiceUnavailable && len(body) > 0 && strings.Contains(string(body), `"failed"`) {
						break
					}
				}
				select {
				case out := <-done:
					t.Fatalf("serve stopped: %s", out)
				default:
				}
				require.True(t, time.Now().Before(deadline), "no failed /ping within a minute")
				time.Sleep(50 * time.Millisecond)
			}
			assert.Contains(t, string(body), "model failed to load")
			resp, err := http.Get("http://" + addr + "/ping")
			require.NoError(t, err, "still serving")
			resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			cancel()
			assert.True(t, strings.HasPrefix(<-done, "exit 0: "))
		})
	}
}

// TestServeContainerWithModelFromEnvironment: in the SageMaker inference
// container (/opt/ml/model present, no arguments), EMBTUNE_MODEL from the
// model's Environment names the folder to serve, and serve still listens
// where SageMaker pings: 0.0.0.0:$SAGEMAKER_BIND_TO_PORT.
func TestServeContainerWithModelFromEnvironment(t *testing.T) {
	m := modelDir(t)
	unpacked := t.TempDir() // /opt/ml/model: the model is in a subfolder
	require.NoError(t, os.Symlink(m, filepath.Join(unpacked, "encoder")))
	old := sagemakerModelDir
	sagemakerModelDir = unpacked
	t.Cleanup(func() { sagemakerModelDir = old })
	t.Setenv("SAGEMAKER_BASE_DIR", "")
	t.Setenv("EMBTUNE_MODEL", filepath.Join(unpacked, "encoder"))
	addr := freeAddr(t)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	t.Setenv("SAGEMAKER_BIND_TO_PORT", port)
	url := runServeUntilReady(t, addr)

	resp, err := http.Post(url+"/invocations", "application/json", strings.NewReader(`{"inputs": ["a"]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}
