package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
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

func TestParseFlagsEnv(t *testing.T) {
	env := map[string]string{
		"EMBTUNE_MAX_BATCH_TOKENS": "512",
		"EMBTUNE_INDEX":            "/x.index",
		"EMBTUNE_BATCH_WAIT":       "5ms",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	newSet := func() (*flag.FlagSet, *int, *string, *time.Duration) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.Int("max-batch-tokens", 16, ""), fs.String("index", "", ""), fs.Duration("batch-wait", 0, "")
	}

	fs, tokens, index, wait := newSet()
	require.NoError(t, parseFlagsEnv(fs, nil, lookup))
	assert.Equal(t, 512, *tokens)
	assert.Equal(t, "/x.index", *index)
	assert.Equal(t, 5*time.Millisecond, *wait)
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	assert.True(t, given["index"], "an environment-set flag counts as given")
	assert.Contains(t, fs.Lookup("index").Usage, "[env EMBTUNE_INDEX]")

	// The command line wins.
	fs, tokens, _, _ = newSet()
	require.NoError(t, parseFlagsEnv(fs, []string{"--max-batch-tokens", "64"}, lookup))
	assert.Equal(t, 64, *tokens)

	// A bad value names the variable.
	env["EMBTUNE_MAX_BATCH_TOKENS"] = "lots"
	fs, _, _, _ = newSet()
	err := parseFlagsEnv(fs, nil, lookup)
	require.ErrorIs(t, err, errUsage)
	assert.Contains(t, err.Error(), `EMBTUNE_MAX_BATCH_TOKENS="lots"`)
}

// TestServeContainerFromEnvironment starts `embtune serve` as the SageMaker
// inference container does, with no arguments: the model comes from
// SAGEMAKER_BASE_DIR/model, and --index, --addr and --max-inputs from
// EMBTUNE_* variables. /search then answers from the index.
func TestServeContainerFromEnvironment(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "docs", "apt.md"), "# APT\n\nUse apt-get install to install a package.\n")
	writeFile(t, filepath.Join(dir, "docs", "boot.txt"), "The boot loader is GRUB. It reads /boot/grub/grub.cfg at start-up.")
	idx := filepath.Join(dir, "docs.index")
	code, _, stderr := runCLI(ctx, []string{"index", "--model", m, "--output", idx, filepath.Join(dir, "docs")}, "")
	require.Equal(t, 0, code, stderr)

	base := filepath.Join(dir, "opt-ml")
	require.NoError(t, os.MkdirAll(base, 0o755))
	require.NoError(t, os.Symlink(m, filepath.Join(base, "model")))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	t.Setenv("SAGEMAKER_BASE_DIR", base)
	t.Setenv("EMBTUNE_INDEX", idx)
	t.Setenv("EMBTUNE_ADDR", addr)
	t.Setenv("EMBTUNE_MAX_INPUTS", "2")

	sctx, cancel := context.WithCancel(ctx)
	done := make(chan string, 1)
	go func() {
		code, _, stderr := runCLI(sctx, []string{"serve"}, "")
		done <- fmt.Sprintf("exit %d: %s", code, stderr)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case msg := <-done:
			t.Fatalf("serve exited: %s", msg)
		default:
		}
		require.True(t, time.Now().Before(deadline), "serve never became ready")
		time.Sleep(100 * time.Millisecond)
	}

	resp, err := http.Post(url+"/search", "application/json", strings.NewReader(`{"query": "grub configuration", "top_k": 1}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "boot.txt")

	// EMBTUNE_MAX_INPUTS=2 is in force.
	resp, err = http.Post(url+"/invocations", "application/json", bytes.NewReader([]byte(`{"inputs": ["a", "b", "c"]}`)))
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
	var e struct{ Error struct{ Type string } }
	require.NoError(t, json.Unmarshal(body, &e))
	assert.Equal(t, "payload_too_large", e.Error.Type)
}
