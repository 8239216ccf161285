package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/internal/testmodel"
)

func modelDir(t testing.TB) string { return testmodel.Dir(t) }

func runCLI(ctx context.Context, args []string, stdin string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestEncodeAndSimilarity(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	code, out, stderr := runCLI(ctx, []string{"encode", "--model", m}, "first text\n\nnaïve résumé\r\n")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, "an empty line still gets a vector")
	var v []float32
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &v))
	assert.Len(t, v, 384)

	code, _, stderr = runCLI(ctx, []string{"encode", "--model", m}, "ok\nbad \xff\n")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "text 1")

	code, _, stderr = runCLI(ctx, []string{"encode", "--model", m}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no input")

	code, out, stderr = runCLI(ctx, []string{"similarity", "--model", m, "a cat", "a cat"}, "")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "1.0000\n", out)

	code, _, stderr = runCLI(ctx, []string{"encode", "--model", filepath.Join(t.TempDir(), "missing")}, "x\n")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no such file")

	code, _, _ = runCLI(ctx, []string{"similarity", "--model", m, "only one"}, "")
	assert.Equal(t, 2, code)
	code, _, _ = runCLI(ctx, []string{"nope"}, "")
	assert.Equal(t, 2, code)
}

func writeFile(t *testing.T, path, content string) {
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// sagemakerTree lays out a temp /opt/ml with a training channel.
func sagemakerTree(t *testing.T, hyper map[string]string, hosts []string) string {
	base := t.TempDir()
	b, _ := json.Marshal(hyper)
	writeFile(t, filepath.Join(base, "input/config/hyperparameters.json"), string(b))
	rc, _ := json.Marshal(map[string]any{"current_host": hosts[0], "hosts": hosts})
	writeFile(t, filepath.Join(base, "input/config/resourceconfig.json"), string(rc))
	writeFile(t, filepath.Join(base, "input/config/inputdataconfig.json"), `{"training": {"TrainingInputMode": "File"}}`)
	var data strings.Builder
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&data, `{"question": "How do I set up service %d?", "answer": "Service %d is set up by editing its file under /etc."}`+"\n", i, i)
	}
	writeFile(t, filepath.Join(base, "input/data/training/pairs.jsonl"), data.String())
	return base
}

// TestTrainingContainer runs `embtune train` with no arguments against a
// temp /opt/ml tree, as SageMaker's `docker run IMAGE train` does.
func TestTrainingContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	base := sagemakerTree(t, map[string]string{
		"model": `"` + modelDir(t) + `"`, "epochs": "1", "batch-size": "4", "max-seq-length": "32", "eval-split": "0.25",
	}, []string{"algo-1"})
	t.Setenv("SAGEMAKER_BASE_DIR", base)
	code, out, stderr := runCLI(context.Background(), []string{"train"}, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "ndcg@10")
	for _, f := range []string{"model/model.safetensors", "model/config.json", "model/tokenizer.json", "model/model.pt",
		"model/1_Pooling/config.json", "model/eval.json", "output/data/eval.json", "output/data/loss.csv"} {
		assert.FileExists(t, filepath.Join(base, f))
	}
	entries, err := os.ReadDir(filepath.Join(base, "checkpoints"))
	require.NoError(t, err)
	assert.NotEmpty(t, entries)
	assert.NoFileExists(t, filepath.Join(base, "output/failure"))
}

func TestTrainingContainerFailures(t *testing.T) {
	// Two hosts whose master never resolves: a clear failure, after retrying.
	base := sagemakerTree(t, map[string]string{"epochs": "1"}, []string{"algo-1.invalid", "algo-2.invalid"})
	t.Setenv("SAGEMAKER_BASE_DIR", base)
	t.Setenv("EMBTUNE_RENDEZVOUS_TIMEOUT", "1500ms")
	code, _, stderr := runCLI(context.Background(), []string{"train"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "algo-1.invalid did not resolve")
	b, err := os.ReadFile(filepath.Join(base, "output/failure"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "did not resolve")

	base = sagemakerTree(t, map[string]string{"epochs": "1", "batch-size": "4", "model": `"` + filepath.Join(t.TempDir(), "none") + `"`}, []string{"algo-1"})
	t.Setenv("SAGEMAKER_BASE_DIR", base)
	code, _, _ = runCLI(context.Background(), []string{"train"}, "")
	assert.Equal(t, 1, code)
	b, err = os.ReadFile(filepath.Join(base, "output/failure"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "no such file")
}

// TestTrainingContainerStopsOnSignal cancels the run as SIGTERM does (main
// wires SIGTERM to the context): it must checkpoint, record the failure and
// return well within SageMaker's 120 s.
func TestTrainingContainerStopsOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	base := sagemakerTree(t, map[string]string{
		"model": `"` + modelDir(t) + `"`, "epochs": "50", "batch-size": "4", "max-seq-length": "32",
	}, []string{"algo-1"})
	t.Setenv("SAGEMAKER_BASE_DIR", base)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Wait for the first checkpoint-able progress: an epoch is 3 steps.
		for i := 0; i < 600; i++ {
			if e, _ := os.ReadDir(filepath.Join(base, "checkpoints")); len(e) > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	code, _, stderr := runCLI(ctx, []string{"train"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "interrupted")
	assert.Less(t, time.Since(start), 5*time.Minute)
	b, err := os.ReadFile(filepath.Join(base, "output/failure"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "interrupted")
	e, err := os.ReadDir(filepath.Join(base, "checkpoints"))
	require.NoError(t, err)
	assert.NotEmpty(t, e)

	// A restart (a Spot job coming back) resumes from the checkpoint.
	hp := map[string]string{"model": `"` + modelDir(t) + `"`, "epochs": "2", "batch-size": "4", "max-seq-length": "32"}
	b, _ = json.Marshal(hp)
	writeFile(t, filepath.Join(base, "input/config/hyperparameters.json"), string(b))
	code, _, stderr = runCLI(context.Background(), []string{"train"}, "")
	// Other hyperparameters than the checkpoint's are refused, not mixed.
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "other hyperparameters")
}

func TestTrainWithoutCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "pairs.jsonl")
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, `{"question": "question number %d?", "answer": "answer number %d."}`+"\n", i, i)
	}
	require.NoError(t, os.WriteFile(data, []byte(b.String()), 0o644))
	out := filepath.Join(dir, "out")
	args := []string{"train", "--model", modelDir(t), "--data", data, "--output", out, "--epochs", "1",
		"--batch-size", "4", "--max-seq-length", "32", "--checkpoints=false"}

	code, _, stderr := runCLI(context.Background(), append(args, "--resume"), "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--resume needs checkpoints")

	code, _, stderr = runCLI(context.Background(), args, "")
	require.Equal(t, 0, code, stderr)
	assert.FileExists(t, filepath.Join(out, "model.pt"))
	assert.NoDirExists(t, filepath.Join(out, "checkpoints"))
}

// TestDeleteCheckpointsOnSuccess: --save-total-limit 1 keeps one
// checkpoint, from which --resume continues; with
// --delete-checkpoints-on-success a run that fails keeps them, and one that
// succeeds removes them and leaves the model.
func TestDeleteCheckpointsOnSuccess(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "pairs.jsonl")
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, `{"question": "question number %d?", "answer": "answer number %d."}`+"\n", i, i)
	}
	require.NoError(t, os.WriteFile(data, []byte(b.String()), 0o644))
	out := filepath.Join(dir, "out")
	ckpts := filepath.Join(out, "checkpoints")
	args := []string{"train", "--model", modelDir(t), "--data", data, "--output", out, "--epochs", "2",
		"--batch-size", "4", "--max-seq-length", "32", "--checkpoint-min-interval", "-1s", "--save-total-limit", "1"}

	code, _, stderr := runCLI(context.Background(), args, "")
	require.Equal(t, 0, code, stderr)
	kept, err := os.ReadDir(ckpts)
	require.NoError(t, err)
	require.Len(t, kept, 1, "--save-total-limit 1")

	// A failed run (other hyperparameters than the checkpoint's) keeps them.
	code, _, stderr = runCLI(context.Background(), append(args, "--resume", "--delete-checkpoints-on-success", "--lr", "1e-3"), "")
	require.Equal(t, 1, code)
	assert.Contains(t, stderr, "other hyperparameters")
	after, err := os.ReadDir(ckpts)
	require.NoError(t, err)
	assert.Len(t, after, 1, "a failed run keeps its checkpoints")

	// A run that resumes from the kept one and succeeds removes them.
	code, _, stderr = runCLI(context.Background(), append(args, "--resume", "--delete-checkpoints-on-success"), "")
	require.Equal(t, 0, code, stderr)
	assert.NoDirExists(t, ckpts)
	assert.FileExists(t, filepath.Join(out, "model.pt"))
	assert.FileExists(t, filepath.Join(out, "model.safetensors"))
}

func TestIndexAndQuery(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "docs", "apt.md"), "# APT\n\nUse apt-get install to install a package. Use apt-get remove to remove it.\n")
	writeFile(t, filepath.Join(dir, "docs", "boot.txt"), "The boot loader is GRUB. It reads /boot/grub/grub.cfg at start-up.")
	writeFile(t, filepath.Join(dir, "docs", "more.jsonl"), `{"id":"mail","text":"Exim is the default mail transfer agent."}`+"\n")
	idx := filepath.Join(dir, "docs.index")

	code, out, stderr := runCLI(ctx, []string{"index", "--model", m, "--output", idx, "--chunk-size", "20", "--chunk-overlap", "0", filepath.Join(dir, "docs")}, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "indexed 3 documents as 5 chunks (0 truncated)")

	code, out, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", idx, "--top-k", "2", "--json", "how do I install software?", "which MTA does Debian use?"}, "")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	var res corpus.Result
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &res))
	require.Len(t, res.Hits, 2)
	assert.Equal(t, "apt.md", res.Hits[0].Doc)
	assert.Equal(t, 1, res.Hits[0].Rank)
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &res))
	assert.Equal(t, "mail#0", res.Hits[0].ID)

	// Queries from standard input, plain output.
	code, out, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", idx, "--top-k", "1"}, "grub configuration file\n")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "boot.txt#1  It reads /boot/grub/grub.cfg at start-up.")

	// Another model's weights: a clear error, not meaningless scores.
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "model.safetensors"), "not the same weights")
	code, _, stderr = runCLI(ctx, []string{"query", "--model", other, "--index", idx, "q"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "rebuild the index")

	// serve --index checks the index before it listens.
	code, _, stderr = runCLI(ctx, []string{"serve", "--model", other, "--index", idx, "--addr", "127.0.0.1:0"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "rebuild the index")
	code, _, stderr = runCLI(ctx, []string{"serve", "--model", m, "--index", filepath.Join(dir, "missing.index")}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "load index")

	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", filepath.Join(dir, "missing.index"), "q"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "load index")

	// The index records its document prompt; a run with another one is
	// refused, since its queries would meet chunks embedded differently.
	prompted := filepath.Join(dir, "prompted.index")
	code, _, stderr = runCLI(ctx, []string{"index", "--model", m, "--output", prompted, "--document-prompt", "passage: ", filepath.Join(dir, "docs")}, "")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", prompted, "q"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `embedded with document prompt "passage: ", and this run's document prompt is ""`)
	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", prompted, "--document-prompt", "passage: ", "q"}, "")
	assert.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", idx, "--document-prompt", "passage: ", "q"}, "")
	assert.Equal(t, 1, code, "the first index was built without a document prompt")
	assert.Contains(t, stderr, `pass --document-prompt ""`)
	code, _, stderr = runCLI(ctx, []string{"serve", "--model", m, "--index", prompted, "--addr", "127.0.0.1:0"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "rebuild the index")

	code, _, _ = runCLI(ctx, []string{"index", "--model", m, filepath.Join(dir, "docs")}, "")
	assert.Equal(t, 2, code, "no --output")
	code, _, stderr = runCLI(ctx, []string{"index", "--model", m, "--output", idx, "--chunk-size", "8", "--chunk-overlap", "8", filepath.Join(dir, "docs")}, "")
	assert.Equal(t, 2, code, stderr)
	code, _, stderr = runCLI(ctx, []string{"index", "--model", m, "--output", idx, filepath.Join(dir, "nothing-here")}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no such file")
}

// TestDefaultModel: --model's default is $EMBTUNE_MODEL, else the fetched
// model in the current directory, else in the repository the binary sits
// in (bin/embtune), so that it runs from anywhere.
func TestDefaultModel(t *testing.T) {
	repo := t.TempDir()
	model := filepath.Join(repo, defaultModelDir)
	require.NoError(t, os.MkdirAll(model, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "bin"), 0o755))
	exe := filepath.Join(repo, "bin", "embtune")
	writeFile(t, exe, "")
	noEnv := func(string) string { return "" }
	fromBin := func() (string, error) { return exe, nil }

	t.Chdir(t.TempDir()) // a directory without third_party
	got, looked := defaultModel(func(string) string { return "/my/model" }, fromBin)
	assert.Equal(t, "/my/model", got)
	assert.Empty(t, looked)

	got, looked = defaultModel(noEnv, fromBin)
	want, err := filepath.EvalSymlinks(model)
	require.NoError(t, err)
	assert.Equal(t, want, got, "the binary's repository")
	assert.Empty(t, looked)

	elsewhere := filepath.Join(t.TempDir(), "embtune")
	got, looked = defaultModel(noEnv, func() (string, error) { return elsewhere, nil })
	assert.Equal(t, defaultModelDir, got)
	assert.Contains(t, looked, defaultModelDir)
	assert.Len(t, looked, 3)

	t.Chdir(repo)
	got, _ = defaultModel(noEnv, func() (string, error) { return elsewhere, nil })
	assert.Equal(t, defaultModelDir, got, "the current directory's, relative")
}

// TestDefaultModelMissing: run from a directory with no model and no
// --model, a command says where it looked and how to name a model, not
// only a stat error.
func TestDefaultModelMissing(t *testing.T) {
	t.Setenv("EMBTUNE_MODEL", "")
	t.Chdir(t.TempDir())
	code, _, stderr := runCLI(context.Background(), []string{"similarity", "a", "b"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no --model was given")
	assert.Contains(t, stderr, "pass --model DIR")
	assert.Contains(t, stderr, "EMBTUNE_MODEL")
	assert.Contains(t, stderr, filepath.Join(defaultModelDir))

	code, _, stderr = runCLI(context.Background(), []string{"similarity", "--model", "nosuch/folder", "a", "b"}, "")
	assert.Equal(t, 1, code)
	assert.NotContains(t, stderr, "no --model was given")
}
