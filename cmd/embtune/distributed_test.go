package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary stand in for bin/embtune: with
// EMBTUNE_TEST_CLI=1 it runs the command line in os.Args and exits, so
// tests (and --nproc-per-node, which re-runs os.Executable) can start
// training processes.
func TestMain(m *testing.M) {
	if os.Getenv("EMBTUNE_TEST_CLI") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan error
}

// startCLI runs `embtune ARGS` as a child process with extra environment.
func startCLI(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(append(os.Environ(), "EMBTUNE_TEST_CLI=1"), env...)
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill() //nolint:errcheck
	})
	return p
}

// wait returns the exit code, failing the test after limit.
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		p.cmd.Process.Kill() //nolint:errcheck
		t.Fatalf("process still running after %s:\n%s", limit, p.stderr.String())
		return -1
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func rankEnv(rank, world, port int) []string {
	return []string{"RANK=" + strconv.Itoa(rank), "LOCAL_RANK=" + strconv.Itoa(rank), "WORLD_SIZE=" + strconv.Itoa(world),
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + strconv.Itoa(port)}
}

// faqPairs writes the first n Debian FAQ pairs as JSONL.
func faqPairs(t *testing.T, n int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "data", "debian-faq.jsonl"))
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	require.GreaterOrEqual(t, len(lines), n)
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines[:n], "")), 0o644))
	return path
}

// TestDistributedBadInput: every refusal comes before any training, with
// an error that says what is wrong.
func TestDistributedBadInput(t *testing.T) {
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "pairs.jsonl")
	require.NoError(t, os.WriteFile(data, []byte(`{"anchor":"a","positive":"b"}`+"\n"), 0o644))
	base := []string{"train", "--model", modelDir(t), "--data", data, "--output", t.TempDir(), "--rendezvous-timeout", "2s"}

	code, _, stderr := runCLI(ctx, append(base, "--nproc-per-node", "2", "--batch-size", "15"), "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--batch-size 15 does not divide by the world size 2")

	// Nobody serves the store.
	for _, kv := range rankEnv(1, 2, freePort(t)) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	start := time.Now()
	code, _, stderr = runCLI(ctx, append(base, "--batch-size", "16"), "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "rank 1 cannot reach the master 127.0.0.1:")
	assert.Less(t, time.Since(start), 30*time.Second)

	// The port is taken by something else.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	t.Setenv("RANK", "0")
	t.Setenv("LOCAL_RANK", "0")
	t.Setenv("MASTER_PORT", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	code, _, stderr = runCLI(ctx, append(base, "--batch-size", "16"), "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "rank 0 cannot serve the store on 127.0.0.1:")

	t.Setenv("RANK", "2")
	code, _, stderr = runCLI(ctx, append(base, "--batch-size", "16"), "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "rank 2 is outside world size 2")
}

// TestDistributedRendezvous: a rank started twice is refused, and ranks
// that never come are named when the rendezvous times out.
func TestDistributedRendezvous(t *testing.T) {
	data := filepath.Join(t.TempDir(), "pairs.jsonl")
	require.NoError(t, os.WriteFile(data, []byte(`{"anchor":"a","positive":"b"}`+"\n"), 0o644))
	args := []string{"train", "--model", modelDir(t), "--data", data, "--output", t.TempDir(), "--batch-size", "3", "--rendezvous-timeout", "6s"}
	port := freePort(t)
	r0 := startCLI(t, rankEnv(0, 3, port), args...)
	r1 := startCLI(t, rankEnv(1, 3, port), args...)
	time.Sleep(2 * time.Second)
	again := startCLI(t, rankEnv(1, 3, port), args...)
	for _, p := range []*proc{r0, r1, again} {
		assert.Equal(t, 1, p.wait(t, 30*time.Second))
	}
	all := r0.stderr.String() + r1.stderr.String() + again.stderr.String()
	assert.Contains(t, all, "rank 1 was started twice")
	assert.Contains(t, r0.stderr.String(), "waiting for rank(s) 2 of 3")
}

// TestDistributedFailures: ranks that disagree on a hyperparameter are all
// refused; when one of two ranks is killed, the survivor exits non-zero
// within the timeout and names it.
func TestDistributedFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts training processes")
	}
	data := faqPairs(t, 32)
	args := func(extra ...string) []string {
		return append([]string{"train", "--model", modelDir(t), "--data", data, "--output", t.TempDir(), "--threads", "1",
			"--batch-size", "16", "--max-seq-length", "32", "--checkpoints=false", "--rendezvous-timeout", "20s"}, extra...)
	}
	port := freePort(t)
	a := startCLI(t, rankEnv(0, 2, port), args("--epochs", "1", "--lr", "2e-5")...)
	b := startCLI(t, rankEnv(1, 2, port), args("--epochs", "1", "--lr", "3e-5")...)
	for r, p := range []*proc{a, b} {
		assert.Equal(t, 1, p.wait(t, time.Minute), "rank %d", r)
		assert.Contains(t, p.stderr.String(), `ranks disagree on training: lr is "2e-05" on rank 0 but "3e-05" on rank 1`, "rank %d", r)
	}

	port = freePort(t)
	survivor := startCLI(t, rankEnv(0, 2, port), args("--epochs", "50")...)
	victim := startCLI(t, rankEnv(1, 2, port), args("--epochs", "50")...)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(survivor.stderr.String(), "INFO training") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	require.Contains(t, survivor.stderr.String(), "INFO training")
	time.Sleep(time.Second)
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	start := time.Now()
	assert.Equal(t, 1, survivor.wait(t, time.Minute))
	assert.Less(t, time.Since(start), 25*time.Second, "within the 20 s timeout (plus the heartbeat check)")
	assert.Contains(t, survivor.stderr.String(), "rank(s) 1 stopped")
	t.Logf("survivor: %s", lastLine(survivor.stderr.String()))

	// SIGTERM to rank 1 alone (one SageMaker host stopping): both ranks stop
	// after the same step, rank 0 writes the checkpoint, both exit.
	port = freePort(t)
	ckpt := t.TempDir()
	r0 := startCLI(t, rankEnv(0, 2, port), args("--epochs", "50", "--checkpoints=true", "--checkpoint-dir", ckpt)...)
	r1 := startCLI(t, rankEnv(1, 2, port), args("--epochs", "50", "--checkpoints=true", "--checkpoint-dir", ckpt)...)
	deadline = time.Now().Add(time.Minute)
	for !strings.Contains(r0.stderr.String(), "INFO step") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, r1.cmd.Process.Signal(syscall.SIGTERM))
	assert.NotEqual(t, 0, r0.wait(t, time.Minute))
	assert.NotEqual(t, 0, r1.wait(t, time.Minute))
	assert.Contains(t, r0.stderr.String(), "reason=interrupted")
	assert.Contains(t, r1.stderr.String(), "training interrupted")
	entries, err := os.ReadDir(ckpt)
	require.NoError(t, err)
	assert.NotEmpty(t, entries, "rank 0 checkpointed")

	// That checkpoint was written by 2 processes: one process refuses it.
	code, _, stderr := runCLI(context.Background(), args("--epochs", "50", "--checkpoints=true", "--checkpoint-dir", ckpt, "--resume"), "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "was written by 2 training process(es), this run has 1")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestTrainingContainerTwoHosts: the SageMaker training container on two
// "hosts" (two /opt/ml trees on loopback, host names mapped by
// EMBTUNE_HOST_OVERRIDES). Both exit 0 and only algo-1 writes the model.
func TestTrainingContainerTwoHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	hosts := []string{"algo-1", "algo-2"}
	port := freePort(t)
	var procs []*proc
	var bases []string
	for _, h := range hosts {
		base := sagemakerTree(t, map[string]string{
			"model": `"` + modelDir(t) + `"`, "epochs": "1", "batch-size": "4", "max-seq-length": "32", "threads": "1",
		}, hosts)
		rc, _ := json.Marshal(map[string]any{"current_host": h, "hosts": hosts, "network_interface_name": "lo"})
		writeFile(t, filepath.Join(base, "input/config/resourceconfig.json"), string(rc))
		bases = append(bases, base)
		procs = append(procs, startCLI(t, []string{"SAGEMAKER_BASE_DIR=" + base, "EMBTUNE_HOST_OVERRIDES=algo-1=127.0.0.1",
			"EMBTUNE_MASTER_PORT=" + strconv.Itoa(port), "EMBTUNE_RENDEZVOUS_TIMEOUT=1m"}, "train"))
	}
	for i, p := range procs {
		require.Equal(t, 0, p.wait(t, 2*time.Minute), "%s:\n%s", hosts[i], p.stderr.String())
	}
	assert.Contains(t, procs[0].stderr.String(), "node_rank=0")
	assert.Contains(t, procs[1].stderr.String(), "node_rank=1")
	assert.FileExists(t, filepath.Join(bases[0], "model/model.safetensors"))
	assert.FileExists(t, filepath.Join(bases[0], "output/data/eval.json"))
	assert.NoFileExists(t, filepath.Join(bases[1], "model/model.safetensors"))
	assert.NoFileExists(t, filepath.Join(bases[1], "output/failure"))
	var rep struct {
		Training struct {
			Steps         int `json:"steps"`
			Communication struct {
				WorldSize int `json:"world_size"`
			} `json:"communication"`
		} `json:"training"`
	}
	b, err := os.ReadFile(filepath.Join(bases[0], "model/eval.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, 2, rep.Training.Communication.WorldSize)
	// The default preset refits on all training pairs after the validation
	// run, on both hosts: 3 steps in the validation run, 3 in the refit.
	assert.Equal(t, 6, rep.Training.Steps, "12 pairs at global batch 4, then the refit")
}

// TestTorchrunAgentStore runs `torchrun --nproc-per-node 2 --no-python
// embtune train` with the real torchrun of the golden venv. torchrun's
// agent serves the TCPStore on MASTER_PORT and tells the workers so
// (TORCHELASTIC_USE_AGENT_STORE=True): rank 0 must join it as a client,
// with no failed bind (c10d's "has failed to bind" message), and the run
// must finish with the model written.
func TestTorchrunAgentStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts torchrun and two training processes")
	}
	torchrun := filepath.Join("..", "..", "third_party", "golden-venv", "bin", "torchrun")
	if _, err := os.Stat(torchrun); err != nil {
		t.Skipf("no torchrun at %s (the golden venv: tools/golden/run.sh creates it): %v", torchrun, err)
	}
	data := faqPairs(t, 16)
	out := t.TempDir()
	cmd := exec.Command(torchrun, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", strconv.Itoa(freePort(t)),
		"--no-python", os.Args[0],
		"train", "--model", modelDir(t), "--data", data, "--output", out, "--threads", "1", "--epochs", "1",
		"--batch-size", "8", "--max-seq-length", "32", "--checkpoints=false", "--validation-split", "0", "--rendezvous-timeout", "60s")
	cmd.Env = append(os.Environ(), "EMBTUNE_TEST_CLI=1")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	log := stderr.String()
	assert.NotContains(t, log, "failed to bind")
	assert.NotContains(t, log, "ignoring the error")
	assert.NotContains(t, log, "cannot serve the store")
	assert.Contains(t, log, "world_size=2")
	assert.FileExists(t, filepath.Join(out, "model.safetensors"))
}
