package sagemaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/hf"
)

// Layout is the /opt/ml tree a SageMaker container sees. Base is /opt/ml in
// a real container; SAGEMAKER_BASE_DIR relocates it (tests use a temp dir
// that mirrors the real layout).
type Layout struct{ Base string }

// DefaultBase is where SageMaker mounts the container's files.
const DefaultBase = "/opt/ml"

// DefaultLayout honours SAGEMAKER_BASE_DIR.
func DefaultLayout() Layout {
	if b := os.Getenv("SAGEMAKER_BASE_DIR"); b != "" {
		return Layout{Base: b}
	}
	return Layout{Base: DefaultBase}
}

// InContainer reports whether this looks like a SageMaker training
// container: SAGEMAKER_BASE_DIR is set or /opt/ml/input/config exists.
func InContainer() bool {
	if os.Getenv("SAGEMAKER_BASE_DIR") != "" {
		return true
	}
	st, err := os.Stat(filepath.Join(DefaultBase, "input", "config"))
	return err == nil && st.IsDir()
}

func (l Layout) configPath(name string) string { return filepath.Join(l.Base, "input", "config", name) }

// ChannelDir is where SageMaker puts a data channel's files.
func (l Layout) ChannelDir(name string) string { return filepath.Join(l.Base, "input", "data", name) }

// ModelDir receives the final model; SageMaker packs it into model.tar.gz.
func (l Layout) ModelDir() string { return filepath.Join(l.Base, "model") }

// CheckpointDir is CheckpointConfig.LocalPath's default; SageMaker syncs it
// with S3 and restores it when a Spot job restarts.
func (l Layout) CheckpointDir() string { return filepath.Join(l.Base, "checkpoints") }

// OutputDataDir is uploaded as output.tar.gz.
func (l Layout) OutputDataDir() string { return filepath.Join(l.Base, "output", "data") }

// FailurePath is where a failed job explains itself; SageMaker shows it as FailureReason.
func (l Layout) FailurePath() string { return filepath.Join(l.Base, "output", "failure") }

// DefaultBaseModel is the model baked into the image (see Dockerfile);
// EMBTUNE_BASE_MODEL overrides it.
func DefaultBaseModel() string {
	if m := os.Getenv("EMBTUNE_BASE_MODEL"); m != "" {
		return m
	}
	return "/opt/embtune/models/all-MiniLM-L6-v2"
}

// TrainingPlan is what the training container runs: `embtune train` Args,
// then Finish copies the reports to the output data folder.
type TrainingPlan struct {
	Layout Layout
	Args   []string
	// Cluster is set for a job of more than one host.
	Cluster *Cluster
}

type resourceConfig struct {
	CurrentHost          string   `json:"current_host"`
	Hosts                []string `json:"hosts"`
	NetworkInterfaceName string   `json:"network_interface_name"`
}

// Cluster is this host's place in a multi-host job (resourceconfig.json):
// its index in Hosts is its node rank, Hosts[0] the master.
type Cluster struct {
	Hosts     []string
	Current   string
	HostIndex int
	// Iface is network_interface_name, for GLOO_SOCKET_IFNAME and
	// NCCL_SOCKET_IFNAME.
	Iface string
}

// Master is the host that serves the rendezvous store (rank 0).
func (c Cluster) Master() string { return c.Hosts[0] }

// HostOverridesEnv maps host names to addresses ("algo-1=127.0.0.1,…"),
// for tests that run several "hosts" on loopback.
const HostOverridesEnv = "EMBTUNE_HOST_OVERRIDES"

// ResolveMaster returns the master's address. SageMaker's host names may
// not resolve for a while after a container starts (AWS's guidance for
// distributed training is to retry), so lookups are retried every second
// until timeout or ctx ends.
func (c Cluster) ResolveMaster(ctx context.Context, timeout time.Duration) (string, error) {
	name := c.Master()
	for _, kv := range strings.Split(os.Getenv(HostOverridesEnv), ",") {
		if h, addr, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && h == name {
			return addr, nil
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		if err == nil && len(addrs) > 0 {
			return addrs[0], nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("master host %s did not resolve within %s: %w", name, timeout, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("resolving master host %s: %w", name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

type channelConfig struct {
	TrainingInputMode string `json:"TrainingInputMode"`
	ContentType       string `json:"ContentType"`
}

// dataExtensions are the files a data channel may hold.
var dataExtensions = []string{".json", ".jsonl", ".csv", ".json.gz", ".jsonl.gz", ".csv.gz"}

// PlanTraining reads the container's configuration and returns the
// `embtune train` invocation:
//   - hyperparameters.json: the flags (see ParseHyperparameters);
//   - resourceconfig.json: with more than one host, Cluster places this one
//     (data-parallel training; the caller joins the group);
//   - inputdataconfig.json and input/data/<channel>: the "training" channel
//     holds the pairs (one data file, or the one named by the "data"
//     hyperparameter); an optional "test" channel is evaluated before and
//     after; an optional "model" channel holds the base model folder, else
//     the "model" hyperparameter, else the model baked into the image;
//   - the model is written to /opt/ml/model, checkpoints to
//     /opt/ml/checkpoints, and a run always resumes from a checkpoint there.
func PlanTraining(l Layout) (TrainingPlan, error) {
	plan := TrainingPlan{Layout: l}
	raw := map[string]string{}
	if _, err := hf.ReadOptionalJSON(l.configPath("hyperparameters.json"), &raw); err != nil {
		return plan, err
	}
	hp, err := ParseHyperparameters(raw)
	if err != nil {
		return plan, err
	}
	var rc resourceConfig
	if _, err := hf.ReadOptionalJSON(l.configPath("resourceconfig.json"), &rc); err != nil {
		return plan, err
	}
	if len(rc.Hosts) > 1 {
		idx := slices.Index(rc.Hosts, rc.CurrentHost)
		if idx < 0 {
			return plan, fmt.Errorf("resourceconfig.json: current_host %q is not among hosts (%s)", rc.CurrentHost, strings.Join(rc.Hosts, ", "))
		}
		// SageMaker lists hosts in the same order on every host; algo-1 first.
		plan.Cluster = &Cluster{Hosts: rc.Hosts, Current: rc.CurrentHost, HostIndex: idx, Iface: rc.NetworkInterfaceName}
	}
	channels := map[string]channelConfig{}
	if _, err := hf.ReadOptionalJSON(l.configPath("inputdataconfig.json"), &channels); err != nil {
		return plan, err
	}
	for name, c := range channels {
		if c.TrainingInputMode != "" && c.TrainingInputMode != "File" {
			return plan, fmt.Errorf("channel %q uses input mode %s; only File mode is supported", name, c.TrainingInputMode)
		}
	}

	data, err := channelFile(l.ChannelDir("training"), hp["data"])
	if err != nil {
		return plan, fmt.Errorf("training channel: %w", err)
	}
	delete(hp, "data")
	if _, err := os.Stat(l.ChannelDir("test")); err == nil {
		if hp["eval-split"] != "" || hp["folds"] != "" {
			return plan, errors.New("a test channel is given: drop the eval-split/folds hyperparameters")
		}
		test, err := channelFile(l.ChannelDir("test"), "")
		if err != nil {
			return plan, fmt.Errorf("test channel: %w", err)
		}
		hp["test-data"] = test
	}
	model := hp["model"]
	delete(hp, "model")
	if st, err := os.Stat(l.ChannelDir("model")); err == nil && st.IsDir() {
		model = l.ChannelDir("model")
	} else if model == "" {
		model = DefaultBaseModel()
	}
	for _, dir := range []string{l.ModelDir(), l.CheckpointDir(), l.OutputDataDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return plan, err
		}
	}
	plan.Args = append([]string{
		"--model=" + model, "--data=" + data, "--output=" + l.ModelDir(),
		"--checkpoint-dir=" + l.CheckpointDir(), "--resume",
	}, Args(hp)...)
	return plan, nil
}

// channelFile picks the data file of a channel folder.
func channelFile(dir, named string) (string, error) {
	if named != "" {
		p := filepath.Join(dir, filepath.Clean("/" + named)[1:])
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("data file %q: %w", named, err)
		}
		return p, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		for _, ext := range dataExtensions {
			if strings.HasSuffix(strings.ToLower(e.Name()), ext) {
				files = append(files, e.Name())
				break
			}
		}
	}
	sort.Strings(files)
	switch len(files) {
	case 0:
		return "", fmt.Errorf("no data file (%s) in %s", strings.Join(dataExtensions, ", "), dir)
	case 1:
		return filepath.Join(dir, files[0]), nil
	}
	return "", fmt.Errorf("%d data files in %s (%s): name one with the \"data\" hyperparameter",
		len(files), dir, strings.Join(files, ", "))
}

// Finish copies the evaluation report and loss curve into the output data
// folder, which SageMaker uploads as output.tar.gz next to model.tar.gz.
func (p TrainingPlan) Finish() error {
	for _, name := range []string{"eval.json", "loss.csv", "loss.svg"} {
		src := filepath.Join(p.Layout.ModelDir(), name)
		b, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(p.Layout.OutputDataDir(), name), func(w io.Writer) error {
			_, err := w.Write(b)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// WriteFailure records why the job failed, for DescribeTrainingJob's
// FailureReason (SageMaker reads at most 1 KiB of it).
func (l Layout) WriteFailure(reason error) error {
	if err := os.MkdirAll(filepath.Dir(l.FailurePath()), 0o755); err != nil {
		return err
	}
	msg := reason.Error()
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	return atomicfile.Write(l.FailurePath(), func(w io.Writer) error {
		_, err := io.WriteString(w, msg)
		return err
	})
}
