package sagemaker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHyperparameters(t *testing.T) {
	hp, err := ParseHyperparameters(map[string]string{
		"epochs": "3", "batch_size": "\"16\"", "lr": "2e-05", "preset": "\"blog\"",
		"symmetric": "true", "pair": "plain text, not JSON", "sagemaker_program": "ignored",
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"epochs": "3", "batch-size": "16", "lr": "2e-05", "preset": "blog",
		"symmetric": "true", "pair": "plain text, not JSON"}, hp)
	assert.Equal(t, []string{"--batch-size=16", "--epochs=3", "--lr=2e-05", "--pair=plain text, not JSON",
		"--preset=blog", "--symmetric=true"}, Args(hp))

	_, err = ParseHyperparameters(map[string]string{"epochz": "3"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "epochz")
	assert.Contains(t, err.Error(), "known: batch-size")
}

// TestHyperparameterAliases accepts the Hugging Face estimator's names.
func TestHyperparameterAliases(t *testing.T) {
	hp, err := ParseHyperparameters(map[string]string{
		"learning_rate": "3e-05", "num_train_epochs": "2", "per_device_train_batch_size": "16",
		"warmup_ratio": "0.1", "max_seq_length": "128",
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"lr": "3e-05", "epochs": "2", "batch-size": "16", "warmup-ratio": "0.1",
		"max-seq-length": "128"}, hp)
	_, err = ParseHyperparameters(map[string]string{"learning_rate": "3e-05", "lr": "2e-05"})
	assert.ErrorContains(t, err, "given twice")
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func fakeLayout(t *testing.T) Layout {
	l := Layout{Base: t.TempDir()}
	writeJSON(t, l.configPath("hyperparameters.json"), map[string]string{"epochs": "\"2\"", "model": "/models/base"})
	writeJSON(t, l.configPath("resourceconfig.json"), map[string]any{"current_host": "algo-1", "hosts": []string{"algo-1"}})
	writeJSON(t, l.configPath("inputdataconfig.json"), map[string]any{"training": map[string]string{"TrainingInputMode": "File"}})
	require.NoError(t, os.MkdirAll(l.ChannelDir("training"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(l.ChannelDir("training"), "pairs.jsonl"), []byte("{}\n"), 0o644))
	return l
}

func TestPlanTraining(t *testing.T) {
	l := fakeLayout(t)
	plan, err := PlanTraining(l)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"--model=/models/base", "--data=" + filepath.Join(l.ChannelDir("training"), "pairs.jsonl"),
		"--output=" + l.ModelDir(), "--checkpoint-dir=" + l.CheckpointDir(), "--resume", "--epochs=2",
	}, plan.Args)

	// A model channel wins over the hyperparameter; a test channel becomes --test-data.
	require.NoError(t, os.MkdirAll(l.ChannelDir("model"), 0o755))
	require.NoError(t, os.MkdirAll(l.ChannelDir("test"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(l.ChannelDir("test"), "held.csv"), []byte("a,b\n"), 0o644))
	plan, err = PlanTraining(l)
	require.NoError(t, err)
	assert.Contains(t, plan.Args, "--model="+l.ChannelDir("model"))
	assert.Contains(t, plan.Args, "--test-data="+filepath.Join(l.ChannelDir("test"), "held.csv"))
}

func TestPlanTrainingRefuses(t *testing.T) {
	cases := map[string]func(t *testing.T, l Layout){
		"multi-host": func(t *testing.T, l Layout) {
			writeJSON(t, l.configPath("resourceconfig.json"), map[string]any{"current_host": "algo-3", "hosts": []string{"algo-1", "algo-2"}})
		},
		"unknown hyperparameter": func(t *testing.T, l Layout) {
			writeJSON(t, l.configPath("hyperparameters.json"), map[string]string{"warmup_proportion": "1"})
		},
		"pipe mode": func(t *testing.T, l Layout) {
			writeJSON(t, l.configPath("inputdataconfig.json"), map[string]any{"training": map[string]string{"TrainingInputMode": "Pipe"}})
		},
		"no training channel": func(t *testing.T, l Layout) { require.NoError(t, os.RemoveAll(l.ChannelDir("training"))) },
		"two data files": func(t *testing.T, l Layout) {
			require.NoError(t, os.WriteFile(filepath.Join(l.ChannelDir("training"), "more.csv"), []byte("x"), 0o644))
		},
		"malformed config": func(t *testing.T, l Layout) {
			require.NoError(t, os.WriteFile(l.configPath("resourceconfig.json"), []byte("{"), 0o644))
		},
	}
	want := map[string]string{"multi-host": "current_host \"algo-3\" is not among hosts", "unknown hyperparameter": "warmup_proportion",
		"pipe mode": "File mode", "no training channel": "training channel", "two data files": "name one",
		"malformed config": "malformed JSON"}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			l := fakeLayout(t)
			damage(t, l)
			_, err := PlanTraining(l)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want[name])
		})
	}
}

func TestWriteFailure(t *testing.T) {
	l := Layout{Base: t.TempDir()}
	long := make([]byte, 3000)
	for i := range long {
		long[i] = 'x'
	}
	require.NoError(t, l.WriteFailure(assert.AnError))
	b, err := os.ReadFile(l.FailurePath())
	require.NoError(t, err)
	assert.Equal(t, assert.AnError.Error(), string(b))
	require.NoError(t, l.WriteFailure(errString(long)))
	b, err = os.ReadFile(l.FailurePath())
	require.NoError(t, err)
	assert.Len(t, b, 1024)
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPlanTrainingCluster(t *testing.T) {
	l := fakeLayout(t)
	writeJSON(t, l.configPath("resourceconfig.json"), map[string]any{"current_host": "algo-2",
		"hosts": []string{"algo-1", "algo-2", "algo-3"}, "network_interface_name": "eth0"})
	plan, err := PlanTraining(l)
	require.NoError(t, err)
	require.NotNil(t, plan.Cluster)
	assert.Equal(t, 1, plan.Cluster.HostIndex)
	assert.Equal(t, "algo-1", plan.Cluster.Master())
	assert.Equal(t, "eth0", plan.Cluster.Iface)

	t.Setenv(HostOverridesEnv, "algo-1=127.0.0.1")
	addr, err := plan.Cluster.ResolveMaster(context.Background(), time.Second)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", addr)
	t.Setenv(HostOverridesEnv, "")
	_, err = Cluster{Hosts: []string{"algo-1.invalid"}}.ResolveMaster(context.Background(), 1500*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not resolve within")

	one := fakeLayout(t)
	writeJSON(t, one.configPath("resourceconfig.json"), map[string]any{"current_host": "algo-1", "hosts": []string{"algo-1"}})
	plan, err = PlanTraining(one)
	require.NoError(t, err)
	assert.Nil(t, plan.Cluster)
}
