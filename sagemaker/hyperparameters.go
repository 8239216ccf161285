// Package sagemaker holds everything specific to Amazon SageMaker: the
// /opt/ml contract of the training and inference containers, the
// model.tar.gz layout, and the AWS SDK calls (S3 upload, training jobs,
// endpoints, invocation).
package sagemaker

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// HyperparameterNames are the hyperparameters the training container accepts.
// They are the `embtune train` flag names; SageMaker passes them as strings.
var HyperparameterNames = []string{
	"batch-size", "best-model-se", "bf16", "checkpoint-every", "checkpoint-min-interval", "checkpoints", "data", "delete-checkpoints-on-success", "device", "directions",
	"document-prompt", "document-prompt-name", "epochs", "eval-split", "eval-steps", "eval-strategy", "folds",
	"gather-across-devices", "gradient-checkpointing", "hard-negative-margin", "hardness-mode", "hardness-strength", "load-best-model-at-end", "lr",
	"matryoshka-dims", "matryoshka-weights", "max-grad-norm", "max-seq-length", "metric-for-best-model",
	"mine-hard-negatives", "mini-batch-size", "model", "no-duplicates", "pair", "partition-mode", "preset", "query-prompt",
	"query-prompt-name", "refit", "refit-max-pairs", "rendezvous-timeout", "save-total-limit", "scale", "seed", "symmetric", "test-data",
	"threads", "train-data", "train-data-scope", "validation-split", "warmup-ratio", "warmup-steps", "weight-decay", "wise-ft",
}

// hfAliases are the Hugging Face estimator's names (transformers'
// TrainingArguments, as the SageMaker Hugging Face examples pass them) for
// embtune's flags, after '_' became '-'. per_device_train_batch_size maps to
// --batch-size, embtune's global batch: the same on one device.
var hfAliases = map[string]string{
	"learning-rate":               "lr",
	"num-train-epochs":            "epochs",
	"per-device-train-batch-size": "batch-size",
	"train-batch-size":            "batch-size",
}

// ParseHyperparameters reads hyperparameters.json's map. Every value arrives
// as a string; the SageMaker Python SDK JSON-encodes values, so "\"mean\""
// or "5" can arrive: a value that decodes as JSON is replaced by its decoded
// scalar, anything else is kept raw. Names may use '-' or '_', and the
// Hugging Face estimator's names (learning_rate, num_train_epochs,
// per_device_train_batch_size; warmup_ratio and max_seq_length are embtune's
// own) are accepted for embtune's. Keys starting
// with "sagemaker_" are the SDK's own and are ignored. Unknown names are an
// error that lists the known ones.
func ParseHyperparameters(raw map[string]string) (map[string]string, error) {
	known := map[string]bool{}
	for _, n := range HyperparameterNames {
		known[n] = true
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		if strings.HasPrefix(k, "sagemaker_") {
			continue
		}
		name := strings.ReplaceAll(k, "_", "-")
		if alias, ok := hfAliases[name]; ok {
			name = alias
		}
		if !known[name] {
			unknown = append(unknown, k)
			continue
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("hyperparameter %s is given twice (as %s and under another name)", name, k)
		}
		out[name] = decodeValue(v)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown hyperparameters %s; known: %s",
			strings.Join(unknown, ", "), strings.Join(HyperparameterNames, ", "))
	}
	return out, nil
}

func decodeValue(v string) string {
	var x any
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return v
	}
	switch t := x.(type) {
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	}
	return v
}

// Args turns parsed hyperparameters into `embtune train` flags, in a stable order.
func Args(hp map[string]string) []string {
	names := make([]string, 0, len(hp))
	for k := range hp {
		names = append(names, k)
	}
	sort.Strings(names)
	var args []string
	for _, k := range names {
		args = append(args, "--"+k+"="+hp[k])
	}
	return args
}
