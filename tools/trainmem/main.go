// Command trainmem measures the peak memory of a few training steps: it
// loads a sentence-transformers folder, trains it for --steps optimizer
// steps of --batch-size pairs (MultipleNegativesRankingLoss, AdamW, no
// validation, no checkpoints) and prints one JSON line with the process's
// peak resident set (VmHWM) after loading and after the steps. Linux only.
//
//	trainmem --model DIR --data PAIRS.jsonl [--gradient-checkpointing]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/trainer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "trainmem:", err)
		os.Exit(1)
	}
}

func run() error {
	model := flag.String("model", "", "sentence-transformers folder")
	data := flag.String("data", "", "training pairs (JSON Lines, as embtune train --data)")
	batch := flag.Int("batch-size", 32, "pairs per optimizer step")
	steps := flag.Int("steps", 2, "optimizer steps")
	maxSeq := flag.Int("max-seq-length", 128, "truncation length in tokens")
	ckpt := flag.Bool("gradient-checkpointing", false, "recompute each layer's activations in backward")
	mini := flag.Int("mini-batch-size", 0, "GradCache mini-batch size (0: off)")
	bf16 := flag.Bool("bf16", false, "bfloat16 autocast")
	threads := flag.Int("threads", 0, "libtorch threads (0: all cores)")
	flag.Parse()
	if *model == "" || *data == "" {
		return errors.New("--model and --data are required")
	}
	ctx := context.Background()
	pairs, err := dataset.Load(*data)
	if err != nil {
		return err
	}
	if len(pairs) < *batch**steps {
		return fmt.Errorf("%s has %d pairs, want %d (%d steps of %d)", *data, len(pairs), *batch**steps, *steps, *batch)
	}
	pairs = pairs[:*batch**steps]
	m, err := minilm.Load(ctx, *model, minilm.Options{Threads: *threads, MaxSeqLength: *maxSeq})
	if err != nil {
		return err
	}
	defer m.Close()
	afterLoad, err := vmHWM()
	if err != nil {
		return err
	}
	hp := trainer.DefaultHyperParameters()
	hp.Epochs, hp.BatchSize, hp.MaxSeqLength = 1, *batch, *maxSeq
	hp.ValidationSplit, hp.WiseFT, hp.LoadBestModelAtEnd, hp.Refit = 0, "off", false, false
	hp.EvalStrategy = trainer.EvalNo
	hp.GradientCheckpointing, hp.MiniBatchSize, hp.BF16 = *ckpt, *mini, *bf16
	var perStep []int64
	var losses []float64
	_, err = trainer.Train(ctx, m, pairs, hp, trainer.Options{OnStep: func(s trainer.StepLog) {
		kib, err := vmHWM()
		if err == nil {
			perStep = append(perStep, kib)
		}
		losses = append(losses, s.Loss)
	}})
	if err != nil {
		return err
	}
	afterTrain, err := vmHWM()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"model": *model, "model_type": m.ModelType(), "batch_size": *batch, "steps": *steps,
		"max_seq_length": m.MaxSeqLength, "gradient_checkpointing": *ckpt, "mini_batch_size": *mini, "bf16": *bf16,
		"vmhwm_after_load_mib": afterLoad / 1024, "vmhwm_after_steps_mib": afterTrain / 1024,
		"vmhwm_per_step_mib": mib(perStep), "losses": losses,
	})
}

func mib(kib []int64) []int64 {
	out := make([]int64, len(kib))
	for i, k := range kib {
		out[i] = k / 1024
	}
	return out
}

// vmHWM is the process's peak resident set size in KiB (/proc/self/status).
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
