package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startServe runs `embtune serve --addr` on a free loopback port until the
// test ends and returns its base URL once /ping answers 200.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	return runServeUntilReady(t, addr, append([]string{"--addr", addr}, args...)...)
}

// runServeUntilReady runs `embtune serve args…`, which must listen on addr,
// until the test ends, and returns its base URL once /ping answers 200.
func runServeUntilReady(t *testing.T, addr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan string, 1)
	go func() {
		code, _, stderr := runCLI(ctx, append([]string{"serve"}, args...), "")
		done <- fmt.Sprintf("exit %d: %s", code, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(url + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
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
}

// TestEvalAndIndexThroughServer runs `embtune eval` and `embtune index`
// against a local `embtune serve` (--encoder-url), as against a deployed
// endpoint, and requires the same metrics and the same search results as
// with the weights loaded here.
func TestEvalAndIndexThroughServer(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	dir := t.TempDir()
	var pairs strings.Builder
	for _, p := range [][2]string{
		{"How do I install a package?", "Use apt-get install to install a package."},
		{"Which boot loader does Debian use?", "The boot loader is GRUB."},
		{"What is the default mail server?", "Exim is the default mail transfer agent."},
		{"How do I upgrade the release?", "Edit sources.list, then run apt full-upgrade."},
	} {
		fmt.Fprintf(&pairs, "{\"anchor\": %q, \"positive\": %q}\n", p[0], p[1])
	}
	data := filepath.Join(dir, "pairs.jsonl")
	writeFile(t, data, pairs.String())
	url := startServe(t, "--model", m)

	code, local, stderr := runCLI(ctx, []string{"eval", "--model", m, "--data", data}, "")
	require.Equal(t, 0, code, stderr)
	code, remote, stderr := runCLI(ctx, []string{"eval", "--encoder-url", url, "--data", data}, "")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, local, remote)
	assert.Contains(t, remote, "ndcg@10")

	writeFile(t, filepath.Join(dir, "docs", "apt.md"), "# APT\n\nUse apt-get install to install a package. Use apt-get remove to remove it.\n")
	writeFile(t, filepath.Join(dir, "docs", "boot.txt"), "The boot loader is GRUB. It reads /boot/grub/grub.cfg at start-up.")
	for _, idx := range []struct{ name string }{{"local"}, {"remote"}} {
		args := []string{"index", "--model", m, "--output", filepath.Join(dir, idx.name+".index"), "--chunk-size", "20", "--chunk-overlap", "0"}
		if idx.name == "remote" {
			args = append(args, "--encoder-url", url)
		}
		args = append(args, filepath.Join(dir, "docs"))
		code, _, stderr := runCLI(ctx, args, "")
		require.Equal(t, 0, code, stderr)
	}
	query := []string{"--model", m, "--top-k", "3", "--json", "grub configuration file", "how do I remove software?"}
	code, want, stderr := runCLI(ctx, append([]string{"query", "--index", filepath.Join(dir, "local.index")}, query...), "")
	require.Equal(t, 0, code, stderr)
	code, got, stderr := runCLI(ctx, append([]string{"query", "--index", filepath.Join(dir, "remote.index")}, query...), "")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, want, got)

	// A server that is not there: a clear error, no index written.
	code, _, stderr = runCLI(ctx, []string{"eval", "--encoder-url", "http://127.0.0.1:1", "--data", data}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "remote encoder")
	code, _, stderr = runCLI(ctx, []string{"eval", "--encoder-url", url, "--endpoint", "ep", "--data", data}, "")
	assert.Equal(t, 2, code, stderr)
}
