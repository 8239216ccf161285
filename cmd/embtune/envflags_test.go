package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
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

// TestServeTableEnvironment: serve's --table has one environment name,
// EMBTUNE_STORE_TABLE, as index --store's; EMBTUNE_TABLE (the generic
// EMBTUNE_<FLAG> form) is neither read nor named in the help.
func TestServeTableEnvironment(t *testing.T) {
	env := map[string]string{"EMBTUNE_STORE_TABLE": "faq", "EMBTUNE_TABLE": "other"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sf storeFlags
	sf.register(fs, true)
	require.NoError(t, parseFlagsEnv(fs, nil, lookup))
	assert.Equal(t, "faq", sf.table)
	usage := fs.Lookup("table").Usage
	assert.Contains(t, usage, "EMBTUNE_STORE_TABLE")
	assert.NotContains(t, usage, "EMBTUNE_TABLE")
	assert.Equal(t, 1, strings.Count(usage, "EMBTUNE_"), usage)

	delete(env, "EMBTUNE_STORE_TABLE")
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sf = storeFlags{}
	sf.register(fs, true)
	require.NoError(t, parseFlagsEnv(fs, []string{"--table", "cli"}, lookup))
	assert.Equal(t, "cli", sf.table, "the command line wins")
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
	addr := freeAddr(t)
	t.Setenv("SAGEMAKER_BASE_DIR", base)
	t.Setenv("EMBTUNE_INDEX", idx)
	t.Setenv("EMBTUNE_ADDR", addr)
	t.Setenv("EMBTUNE_MAX_INPUTS", "2")
	url := runServeUntilReady(t, addr) // no arguments, as the container starts it

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

// TestEveryServeFlagReadsTheEnvironment: the SageMaker inference container
// starts `serve` with no arguments, so each serve flag must have an
// EMBTUNE_* form. runServe looks up the variable of every flag the command
// line did not give, and names it in the flag's help.
func TestEveryServeFlagReadsTheEnvironment(t *testing.T) {
	var serveFlags *flag.FlagSet
	flagSetCreated = func(name string, fs *flag.FlagSet) {
		if name == "serve" {
			serveFlags = fs
			fs.SetOutput(io.Discard)
		}
	}
	defer func() { flagSetCreated = nil }()
	looked := map[string]bool{}
	defer func(f func(string) (string, bool)) { osLookupEnv = f }(osLookupEnv)
	osLookupEnv = func(k string) (string, bool) { looked[k] = true; return "", false }

	// An argument stops serve after the flags are read, before it loads anything.
	err := runServe(context.Background(), []string{"stray"}, nil, io.Discard)
	require.ErrorIs(t, err, errUsage)
	require.NotNil(t, serveFlags)
	serveFlags.VisitAll(func(f *flag.Flag) {
		env := envNameOf(f) // EMBTUNE_<FLAG>, or the one its help names (--table: EMBTUNE_STORE_TABLE)
		assert.True(t, looked[env], "--%s is not read from %s", f.Name, env)
		assert.Contains(t, f.Usage, env, "--%s's help names its variable", f.Name)
	})
	for _, name := range []string{"index", "addr", "model", "max-inputs", "max-queue", "batch-wait", "truncate-dim", "default-prompt-name", "store"} {
		assert.NotNil(t, serveFlags.Lookup(name), "--%s", name)
	}
}
