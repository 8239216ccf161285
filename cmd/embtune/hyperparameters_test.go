package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/sagemaker"
)

// containerOwned are the train flags the training container sets itself,
// so they are not hyperparameters: the paths and --resume from /opt/ml, and
// the launcher's process count and port from resourceconfig.json (GPUs per
// host) and EMBTUNE_MASTER_PORT.
var containerOwned = map[string]bool{"output": true, "checkpoint-dir": true, "resume": true,
	"nproc-per-node": true, "master-port": true}

// TestHyperparametersAreTrainFlags ties the training container's
// hyperparameter names to the `embtune train` flag set: every flag but the
// container's own is a hyperparameter, and nothing else is.
func TestHyperparametersAreTrainFlags(t *testing.T) {
	var train *flag.FlagSet
	flagSetCreated = func(name string, fs *flag.FlagSet) {
		if name == "train" {
			train = fs
			fs.SetOutput(io.Discard)
		}
	}
	defer func() { flagSetCreated = nil }()
	err := runTrain(context.Background(), []string{"--help"}, nil, io.Discard)
	require.True(t, errors.Is(err, flag.ErrHelp), "%v", err)
	require.NotNil(t, train)
	var flags []string
	train.VisitAll(func(f *flag.Flag) {
		if !containerOwned[f.Name] {
			flags = append(flags, f.Name)
		}
	})
	sort.Strings(flags)
	names := append([]string(nil), sagemaker.HyperparameterNames...)
	sort.Strings(names)
	assert.Equal(t, flags, names, "sagemaker.HyperparameterNames must list the train flags")
}
