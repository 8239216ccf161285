package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/distributed"
	"github.com/embtune/embtune/finetune"
	"github.com/embtune/embtune/sagemaker"
	"github.com/embtune/embtune/torch"
	"github.com/embtune/embtune/trainer"
)

// pairFlag collects repeated --pair "query<TAB>answer" values.
// presetBool is a boolean flag that can also be left to the preset: nil
// until given. Like a flag.Bool, a bare --name means true.
type presetBool struct{ v *bool }

func (b *presetBool) String() string {
	if b == nil || b.v == nil {
		return ""
	}
	return strconv.FormatBool(*b.v)
}

func (b *presetBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, not %q", s)
	}
	b.v = &v
	return nil
}

func (b *presetBool) IsBoolFlag() bool { return true }

type pairFlag [][2]string

func (p *pairFlag) String() string { return fmt.Sprint(len(*p)) }

func (p *pairFlag) Set(s string) error {
	q, a, ok := strings.Cut(s, "\t")
	if !ok {
		q, a, ok = strings.Cut(s, "|||")
	}
	if !ok || strings.TrimSpace(q) == "" || strings.TrimSpace(a) == "" {
		return fmt.Errorf("want \"query<TAB>answer\" or \"query|||answer\"")
	}
	*p = append(*p, [2]string{q, a})
	return nil
}

// trainFlags are `embtune train`'s flags.
type trainFlags struct {
	fs               *flag.FlagSet
	mf               modelFlags
	refit            presetBool
	pairs            pairFlag
	data             *string
	output           *string
	evalSplit        *float64
	testData         *string
	folds            *int
	trainData        *string
	trainScope       *string
	preset           *string
	seed             *uint64
	epochs           *int
	batch            *int
	lr               *float64
	warmupRatio      *float64
	warmupSteps      *int
	weightDecay      *float64
	maxGradNorm      *float64
	scale            *float64
	symmetric        *bool
	directions       *string
	partition        *string
	hardness         *string
	hardnessStrength *float64
	mrlDims          *string
	mrlWeights       *string
	hardNegs         *int
	hardMargin       *float64
	noDup            *string
	bf16             *bool
	gradCkpt         *bool
	miniBatch        *int
	valSplit         *float64
	evalStrategy     *string
	evalSteps        *int
	metricBest       *string
	loadBest         *string
	bestSE           *float64
	refitMax         *int
	wiseFT           *string
	ckpts            *bool
	ckptDir          *string
	ckptEvery        *int
	ckptMin          *time.Duration
	keep             *int
	resume           *bool
	deleteCkpts      *bool
	nproc            *int
	masterPort       *int
	rdzvTimeout      *time.Duration
	gather           *string
}

func newTrainFlags() *trainFlags {
	f := &trainFlags{fs: newFlags("train")}
	fs := f.fs
	f.mf.register(fs)
	f.data = fs.String("data", "", "training pairs: AWS JSON (sentence1/sentence2), JSONL (anchor/positive[/negative…] or question/answer) or CSV")
	f.output = fs.String("output", "out", "output folder for the tuned model, model.pt, eval.json and the loss curve")
	f.evalSplit = fs.Float64("eval-split", 0, "hold out this fraction of the pairs to evaluate base vs tuned")
	f.testData = fs.String("test-data", "", "separate held-out pairs to evaluate base vs tuned (all of --data trains)")
	f.folds = fs.Int("folds", 0, "run k-fold evaluation (k > 1), then train the exported model on all pairs")
	f.trainData = fs.String("train-data", "", "with --folds: train each fold and the exported model on these pairs (e.g. from embtune data generate) instead of --data's; each fold is still tested on its --data questions against every --data positive")
	f.trainScope = fs.String("train-data-scope", "all", "with --train-data: all (every fold trains on all of it: only the questions are held out) or fold (a fold leaves out the pairs whose positive is a held-out positive or a chunk of one)")
	f.preset = fs.String("preset", "default", "hyperparameter preset: default (ST's recommendations for small data) or blog (the AWS sample)")
	f.seed = fs.Uint64("seed", 0, "random seed for splits, shuffling and dropout (0: the preset's, 42)")
	f.epochs = fs.Int("epochs", 0, "epochs (0: the preset's)")
	f.batch = fs.Int("batch-size", 0, "pairs per batch (0: the preset's)")
	f.lr = fs.Float64("lr", 0, "peak learning rate (0: the preset's)")
	f.warmupRatio = fs.Float64("warmup-ratio", -1, "warmup as a fraction of all steps (-1: the preset's)")
	f.warmupSteps = fs.Int("warmup-steps", -1, "warmup steps, overrides --warmup-ratio (-1: the preset's)")
	f.weightDecay = fs.Float64("weight-decay", -1, "AdamW weight decay, not applied to biases and LayerNorm (-1: the preset's)")
	f.maxGradNorm = fs.Float64("max-grad-norm", -1, "gradient clipping norm, 0 disables (-1: the preset's)")
	f.scale = fs.Float64("scale", 0, "MultipleNegativesRankingLoss scale (0: the preset's, 20)")
	f.symmetric = fs.Bool("symmetric", false, "use MultipleNegativesSymmetricRankingLoss")
	f.directions = fs.String("directions", "", "MultipleNegativesRankingLoss directions, comma-separated: query_to_doc (always), query_to_query, doc_to_query, doc_to_doc (empty: query_to_doc)")
	f.partition = fs.String("partition-mode", "", "joint (one softmax over all directions) or per_direction (empty: joint)")
	f.hardness = fs.String("hardness-mode", "", "weigh harder negatives more: in_batch_negatives, hard_negatives or all_negatives (empty: off)")
	f.hardnessStrength = fs.Float64("hardness-strength", 0, "the hardness penalty's alpha (Lan et al. 2025 use 9 for in_batch_negatives)")
	f.mrlDims = fs.String("matryoshka-dims", "", "wrap the loss in MatryoshkaLoss at these embedding dims, comma-separated, e.g. 384,256,128,64 (empty: off)")
	f.mrlWeights = fs.String("matryoshka-weights", "", "MatryoshkaLoss weight of each dim, comma-separated (empty: 1 each)")
	f.hardNegs = fs.Int("mine-hard-negatives", -1, "mine N hard negatives per pair from the training positives before training (0: off; -1: the preset's)")
	f.hardMargin = fs.Float64("hard-negative-margin", -1, "skip mined candidates scoring above the positive's score minus this (-1: the preset's)")
	f.noDup = fs.String("no-duplicates", "", "true/false: the no-duplicates batch sampler (empty: the preset's)")
	f.miniBatch = fs.Int("mini-batch-size", 0, "the cached loss (GradCache, CachedMultipleNegativesRankingLoss): embed and backpropagate the batch N pairs' texts at a time, so --batch-size is not limited by activation memory; dropout replays (unset: the plain loss)")
	f.bf16 = fs.Bool("bf16", false, "bfloat16 autocast for forward and backward")
	f.gradCkpt = fs.Bool("gradient-checkpointing", false, "recompute each encoder layer's activations in the backward pass instead of keeping them: less memory for one more forward pass, the same step")
	f.valSplit = fs.Float64("validation-split", -1, "hold out this fraction of the training pairs as a validation split, never the test fold; 0 disables (-1: the preset's, 0.2 default, 0 blog)")
	f.evalStrategy = fs.String("eval-strategy", "", "evaluate the validation split at each epoch end, every --eval-steps steps, or not: epoch, steps or no (empty: the preset's)")
	f.evalSteps = fs.Int("eval-steps", 0, "with --eval-strategy steps: evaluate every N optimizer steps")
	f.metricBest = fs.String("metric-for-best-model", "", "validation metric that picks the best model and the WiSE-FT α: ndcg@10, mrr@10, map@100, accuracy@1, recall@10, … (empty: ndcg@10)")
	f.loadBest = fs.String("load-best-model-at-end", "", "true/false: restore the weights that scored best on the validation split, the base model included (empty: the preset's)")
	f.bestSE = fs.Float64("best-model-se", -1, "an earlier epoch, the base model or a smaller WiSE-FT α must beat a later epoch or a larger α by this many standard errors of the per-query difference on the validation split to be chosen; 0 picks the highest score, as transformers does (-1: the preset's, 1)")
	fs.Var(&f.refit, "refit", "after the validation split chose the epoch and the WiSE-FT α, train again from the base model on all training pairs (validation included) with those choices; --refit=false turns it off (default preset: on for up to --refit-max-pairs pairs)")
	f.refitMax = fs.Int("refit-max-pairs", -1, "refit only training sets of at most N pairs, validation included; 0: any size (-1: the preset's, 1000)")
	f.wiseFT = fs.String("wise-ft", "", "interpolate base and tuned weights (WiSE-FT): auto (α on the validation split from 0, 0.1, …, 1), off, or a fixed α in [0, 1] (empty: the preset's)")
	f.ckpts = fs.Bool("checkpoints", true, "write checkpoints (false: none, as save_strategy \"no\"; --resume needs them)")
	f.ckptDir = fs.String("checkpoint-dir", "", "write checkpoints here (default OUTPUT/checkpoints)")
	f.ckptEvery = fs.Int("checkpoint-every", 0, "also checkpoint every N steps (0: at epoch ends only)")
	f.ckptMin = fs.Duration("checkpoint-min-interval", 0, "skip epoch-end checkpoints closer together than this (0: 1m; negative: never skip)")
	f.keep = fs.Int("save-total-limit", 2, "keep the newest N checkpoints (transformers' save_total_limit; --resume continues from the newest kept)")
	f.deleteCkpts = fs.Bool("delete-checkpoints-on-success", false, "remove the checkpoints once the run has finished successfully, leaving the model in --output; "+
		"a failed or interrupted run keeps them for --resume")
	f.resume = fs.Bool("resume", false, "continue from the newest checkpoint")
	f.nproc = fs.Int("nproc-per-node", envInt("EMBTUNE_NPROC_PER_NODE", 1), "start N data-parallel workers here, as torchrun does: one per GPU (cuda:LOCAL_RANK), or a share of the CPU threads each (env EMBTUNE_NPROC_PER_NODE)")
	f.masterPort = fs.Int("master-port", 0, "with --nproc-per-node: the rendezvous port on 127.0.0.1 (0: a free one)")
	f.rdzvTimeout = fs.Duration("rendezvous-timeout", envDuration("EMBTUNE_RENDEZVOUS_TIMEOUT", distributed.DefaultTimeout), "how long ranks wait for each other at the rendezvous and in each collective (env EMBTUNE_RENDEZVOUS_TIMEOUT)")
	f.gather = fs.String("gather-across-devices", "", "true/false: MultipleNegativesRankingLoss over the global batch, with in-batch negatives from every rank (empty: true with more than one process)")
	fs.Var(&f.pairs, "pair", "a \"query<TAB>answer\" pair whose cosine is reported before and after (repeatable)")
	return f
}

func runTrain(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 && sagemaker.InContainer() {
		return runTrainingContainer(ctx, stdin, stdout)
	}
	f := newTrainFlags()
	if err := parseFlagsOnly(f.fs, args); err != nil {
		return err
	}
	if *f.data == "" {
		return usageError("--data is required")
	}
	if *f.trainData != "" && *f.folds < 2 {
		return usageError("--train-data needs --folds: each fold's --data questions are the test questions")
	}
	if *f.trainScope != finetune.TrainScopeAll && *f.trainScope != finetune.TrainScopeFold {
		return usageError("--train-data-scope: want all or fold, got %q", *f.trainScope)
	}
	if *f.nproc < 1 {
		return usageError("--nproc-per-node must be at least 1")
	}
	hp, err := f.hyperParameters()
	if err != nil {
		return err
	}
	if *f.keep < 1 {
		return usageError("--save-total-limit must be at least 1 (--checkpoints=false writes none)")
	}
	dev, err := torch.ParseDevice(f.mf.device)
	if err != nil {
		return usageError("%v", err)
	}
	if *f.nproc > 1 && os.Getenv("WORLD_SIZE") == "" {
		node, err := nodeFromEnv()
		if err != nil {
			return usageError("%v", err)
		}
		if world := *f.nproc * node.Count; hp.BatchSize%world != 0 {
			return usageError("--batch-size %d does not divide by the world size %d: it is the global batch, split evenly across ranks", hp.BatchSize, world)
		}
		return launchWorkers(ctx, f.fs, args, *f.nproc, node, *f.masterPort, *f.rdzvTimeout, f.mf, stdout)
	}
	job, err := f.job(hp, dev)
	if err != nil {
		return err
	}
	cfg, distributedRun, err := distributed.FromEnv()
	if err != nil {
		return usageError("%v", err)
	}
	if distributedRun && cfg.WorldSize > 1 {
		return f.runRank(ctx, job, cfg, dev, stdout)
	}
	rep, err := job.Run(ctx)
	if err != nil {
		return err
	}
	finetune.PrintReport(stdout, rep)
	return nil
}

// hyperParameters is the preset with the flags given on top, validated.
func (f *trainFlags) hyperParameters() (trainer.HyperParameters, error) {
	hp, err := trainer.Preset(*f.preset)
	if err != nil {
		return hp, usageError("%v", err)
	}
	f.override(&hp)
	if f.given("mini-batch-size") {
		if *f.miniBatch <= 0 {
			return hp, usageError("--mini-batch-size must be at least 1, not %d (leave it out for the plain loss)", *f.miniBatch)
		}
		hp.MiniBatchSize = *f.miniBatch
	}
	if f.refit.v != nil {
		hp.Refit = *f.refit.v
		if hp.Refit && hp.ValidationSplit == 0 {
			return hp, usageError("--refit needs a validation split to choose the epoch and α on: set --validation-split")
		}
	} else if hp.ValidationSplit == 0 {
		hp.Refit = false // nothing to refit without the split that --validation-split 0 turned off
	}
	if *f.bestSE >= 0 {
		hp.BestModelSE = *f.bestSE
	}
	switch *f.loadBest {
	case "":
	case "true":
		hp.LoadBestModelAtEnd = true
	case "false":
		hp.LoadBestModelAtEnd = false
	default:
		return hp, usageError("--load-best-model-at-end takes true or false")
	}
	switch *f.noDup {
	case "":
	case "true":
		hp.NoDuplicates = true
	case "false":
		hp.NoDuplicates = false
	default:
		return hp, usageError("--no-duplicates takes true or false")
	}
	if err := hp.Validate(); err != nil {
		return hp, usageError("%v", err)
	}
	return hp, nil
}

// given reports whether the flag name was on the command line.
func (f *trainFlags) given(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// override sets the hyperparameters whose flags were given.
func (f *trainFlags) override(hp *trainer.HyperParameters) {
	setIf := func(cond bool, set func()) {
		if cond {
			set()
		}
	}
	setIf(*f.seed != 0, func() { hp.Seed = *f.seed })
	setIf(*f.epochs != 0, func() { hp.Epochs = *f.epochs })
	setIf(*f.batch != 0, func() { hp.BatchSize = *f.batch })
	setIf(*f.lr != 0, func() { hp.LR = *f.lr })
	setIf(*f.warmupRatio >= 0, func() { hp.WarmupRatio, hp.WarmupSteps = *f.warmupRatio, -1 })
	setIf(*f.warmupSteps >= 0, func() { hp.WarmupSteps = *f.warmupSteps })
	setIf(*f.weightDecay >= 0, func() { hp.WeightDecay = *f.weightDecay })
	setIf(*f.maxGradNorm >= 0, func() { hp.MaxGradNorm = *f.maxGradNorm })
	setIf(*f.scale != 0, func() { hp.Scale = *f.scale })
	setIf(*f.symmetric, func() { hp.Symmetric = true })
	setIf(*f.directions != "", func() { hp.Directions = *f.directions })
	setIf(*f.partition != "", func() { hp.PartitionMode = *f.partition })
	setIf(*f.hardness != "", func() { hp.HardnessMode = *f.hardness })
	setIf(*f.hardnessStrength != 0, func() { hp.HardnessStrength = *f.hardnessStrength })
	setIf(*f.mrlDims != "", func() { hp.MatryoshkaDims = *f.mrlDims })
	setIf(*f.mrlWeights != "", func() { hp.MatryoshkaWeights = *f.mrlWeights })
	setIf(*f.bf16, func() { hp.BF16 = true })
	setIf(*f.gradCkpt, func() { hp.GradientCheckpointing = true })
	setIf(*f.hardNegs >= 0, func() { hp.HardNegatives = *f.hardNegs })
	setIf(*f.hardMargin >= 0, func() { hp.HardNegativeMargin = *f.hardMargin })
	setIf(f.mf.maxSeqLength != 0, func() { hp.MaxSeqLength = f.mf.maxSeqLength })
	setIf(*f.valSplit >= 0, func() { hp.ValidationSplit = *f.valSplit })
	setIf(*f.evalStrategy != "", func() { hp.EvalStrategy = *f.evalStrategy })
	setIf(*f.evalSteps != 0, func() { hp.EvalSteps = *f.evalSteps })
	setIf(*f.metricBest != "", func() { hp.MetricForBestModel = *f.metricBest })
	setIf(*f.wiseFT != "", func() { hp.WiseFT = *f.wiseFT })
	setIf(*f.refitMax >= 0, func() { hp.RefitMaxPairs = *f.refitMax })
}

// job is the fine-tuning job the flags describe, for one process.
func (f *trainFlags) job(hp trainer.HyperParameters, dev torch.Device) (*finetune.Job, error) {
	switch {
	case !*f.ckpts && *f.resume:
		return nil, usageError("--resume needs checkpoints; drop --checkpoints=false")
	case !*f.ckpts:
		*f.ckptDir = ""
	case *f.ckptDir == "":
		*f.ckptDir = *f.output + "/checkpoints"
	}
	job := &finetune.Job{
		ModelDir: f.mf.dir, DataPath: *f.data, OutputDir: *f.output, EvalSplit: *f.evalSplit, Folds: *f.folds, TestPath: *f.testData,
		TrainPath: *f.trainData, TrainScope: *f.trainScope,
		Hyper: hp, Device: dev, Threads: f.mf.threads, Pairs: f.pairs,
		CheckpointDir: *f.ckptDir, CheckpointEvery: *f.ckptEvery, MinCheckpointInterval: *f.ckptMin, KeepCheckpoints: *f.keep, Resume: *f.resume,
		DeleteCheckpoints: *f.deleteCkpts,
		Logger:            slog.Default(), Progress: os.Stderr,
	}
	var err error
	if job.QueryPrompt, job.DocumentPrompt, err = f.mf.prompts.choices(); err != nil {
		return nil, err
	}
	return job, nil
}

// runRank runs job as one rank of a group described by torchrun's
// environment (cfg): it joins the group, trains its shard and meets the
// others at the barrier; rank 0 prints the report.
func (f *trainFlags) runRank(ctx context.Context, job *finetune.Job, cfg distributed.Config, dev torch.Device, stdout io.Writer) error {
	hp := job.Hyper
	if dev.Type == torch.CUDAType || (f.mf.device == "auto" && torch.CUDADeviceCount() > 0) {
		dev = torch.CUDA(cfg.LocalRank) // one GPU per local rank, as torchrun's users set
	}
	cfg.Timeout, cfg.Device = *f.rdzvTimeout, dev
	if cfg.Iface == "" && dev.Type == torch.CUDAType {
		cfg.Iface = os.Getenv("NCCL_SOCKET_IFNAME")
	}
	switch *f.gather {
	case "", "true":
		job.GatherAcrossDevices = true
	case "false":
	default:
		return usageError("--gather-across-devices takes true or false")
	}
	if hp.BatchSize%cfg.WorldSize != 0 {
		return usageError("--batch-size %d does not divide by the world size %d: it is the global batch, split evenly across ranks", hp.BatchSize, cfg.WorldSize)
	}
	g, err := distributed.Join(ctx, cfg, nil)
	if err != nil {
		return err
	}
	job.Group, job.Device = g, dev
	if !g.Main() {
		job.Progress = nil
	}
	slog.Info("joined", "rank", cfg.Rank, "world_size", cfg.WorldSize, "master", fmt.Sprintf("%s:%d", cfg.MasterAddr, cfg.MasterPort), "device", dev.String())
	rep, err := job.Run(ctx)
	if err != nil {
		g.Abort()
		return err
	}
	// Every rank meets at the barrier before exiting.
	if err := g.Close(ctx, nil); err != nil {
		return err
	}
	if g.Main() {
		finetune.PrintReport(stdout, rep)
	}
	return nil
}

// launchWorkers re-runs this command as nproc workers (distributed.Launch),
// giving each a share of the CPU threads unless --threads was set.
func launchWorkers(ctx context.Context, fs *flag.FlagSet, args []string, nproc int, node distributed.Node, port int, timeout time.Duration, mf modelFlags, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	child := append([]string{"train"}, args...)
	child = append(child, "--nproc-per-node", strconv.Itoa(nproc))
	if !set["threads"] {
		child = append(child, "--threads", strconv.Itoa(max(1, runtime.NumCPU()/nproc)))
	}
	grace := min(timeout, time.Minute)
	slog.Info("launching", "nproc_per_node", nproc, "device", mf.device)
	if port == 0 && node.Count > 1 {
		port = envInt("MASTER_PORT", 29500)
	}
	return distributed.Launch(ctx, exe, child, nproc, node, port, grace, stdout, os.Stderr)
}

// nodeFromEnv reads torchrun's multi-node launch variables NNODES,
// NODE_RANK and MASTER_ADDR (one node on loopback when NNODES is unset).
func nodeFromEnv() (distributed.Node, error) {
	n := distributed.Node{Count: envInt("NNODES", 1), Rank: envInt("NODE_RANK", 0), MasterAddr: os.Getenv("MASTER_ADDR")}
	if n.MasterAddr == "" {
		n.MasterAddr = "127.0.0.1"
	}
	if n.Count < 1 || n.Rank < 0 || n.Rank >= n.Count {
		return n, fmt.Errorf("NODE_RANK %d is outside NNODES %d", n.Rank, n.Count)
	}
	return n, nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// runTrainingContainer is `docker run IMAGE train` under SageMaker: the
// flags come from /opt/ml (see sagemaker.PlanTraining); a failure is also
// written to /opt/ml/output/failure.
func runTrainingContainer(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	layout := sagemaker.DefaultLayout()
	slog.Info("sagemaker training container", "base", layout.Base)
	plan, err := sagemaker.PlanTraining(layout)
	if err == nil && plan.Cluster != nil {
		plan.Args, err = joinCluster(ctx, *plan.Cluster, plan.Args)
	}
	if err == nil {
		slog.Info("training", "args", strings.Join(plan.Args, " "))
		err = runTrain(ctx, plan.Args, stdin, stdout)
	}
	if err == nil {
		err = plan.Finish()
	}
	if err != nil {
		if werr := layout.WriteFailure(err); werr != nil {
			slog.Error("writing the failure file", "err", werr)
		}
	}
	return err
}

func runEval(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("eval")
	var mf modelFlags
	mf.register(fs)
	mf.registerQuantize(fs)
	data := fs.String("data", "", "pairs to evaluate on: queries are the anchors, the corpus all positives")
	evalSplit := fs.Float64("eval-split", 0, "evaluate only this held-out fraction (same split as train with the same --seed)")
	corpusPath := fs.String("corpus", "", "pairs whose positives form the corpus, with --data's positives added (default: --data's only); "+
		"--data FOLD/test.jsonl --corpus ALL.jsonl scores a fold as train's report does")
	seed := fs.Uint64("seed", 42, "split seed")
	truncateDim := registerTruncateDim(fs)
	cmp := registerCompare(fs)
	var rf remoteFlags
	rf.register(fs)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usageError("--data is required")
	}
	if *truncateDim < 0 {
		return usageError("--truncate-dim must be at least 1 (0: the model's full dimension)")
	}
	pairs, err := dataset.Load(*data)
	if err != nil {
		return err
	}
	test := pairs
	if *evalSplit > 0 {
		split, err := dataset.TrainTestSplit(pairs, *evalSplit, *seed)
		if err != nil {
			return err
		}
		test = split.Test
	}
	// corpus holds the pairs whose positives are the corpus; question ids
	// (in --scores files) are line numbers in it.
	corpus := pairs
	if *corpusPath != "" {
		if corpus, err = dataset.Load(*corpusPath); err != nil {
			return fmt.Errorf("--corpus: %w", err)
		}
		ids := finetune.QuestionIDs(corpus)
		for _, p := range test {
			if _, ok := ids[p.Anchor]; !ok {
				// Not the fold of a larger file: number by --data's lines.
				corpus = append(append([]dataset.Pair(nil), pairs...), corpus...)
				break
			}
		}
	}
	enc, err := rf.encoder(ctx)
	if err != nil {
		return err
	}
	if enc != nil {
		if enc, err = mf.remoteWithPrompts(enc); err != nil {
			return err
		}
	}
	modelDim := 0 // a remote encoder's is known at its first answer
	if enc == nil {
		m, err := mf.load(ctx)
		if err != nil {
			return err
		}
		defer m.Close()
		enc, modelDim = m, m.Dim()
	}
	if enc, err = truncating(enc, *truncateDim, modelDim); err != nil {
		return err
	}
	if cmp.active() {
		return cmp.run(ctx, stdout, mf, enc, *truncateDim, *data, corpus, test, *seed)
	}
	metrics, err := trainer.Evaluate(ctx, enc, dataset.NewIRTask(corpus, test))
	if err != nil {
		return err
	}
	finetune.FormatTable(stdout, []string{"model"}, map[string]trainer.IRMetrics{"model": metrics})
	return nil
}

func runData(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("data faq")
	format := fs.String("format", "auto", "auto, debian-text, markdown or rst")
	prefix := fs.String("id-prefix", "", "prefix for entry ids (default: from the format)")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fs.Usage()
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "faq" {
		return usageError("embtune data faq [--format auto|debian-text|markdown|rst] [--id-prefix P] FILE[.gz] > pairs.jsonl")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("data faq takes one FAQ document")
	}
	entries, err := dataset.LoadFAQ(fs.Arg(0), dataset.FAQOptions{Format: *format, IDPrefix: *prefix})
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return fmt.Errorf("%s: no headings ending in \"?\" found", fs.Arg(0))
	}
	return dataset.WriteJSONL(stdout, entries)
}

// joinCluster sets torchrun's variables for this host of a multi-host job:
// one process per GPU (--nproc-per-node, NODE_RANK, NNODES) or one per CPU
// host (RANK is the host's index), the master at hosts[0], and the network
// interface SageMaker names. The port is EMBTUNE_MASTER_PORT (29500).
func joinCluster(ctx context.Context, c sagemaker.Cluster, args []string) ([]string, error) {
	timeout := envDuration("EMBTUNE_RENDEZVOUS_TIMEOUT", distributed.DefaultTimeout)
	master, err := c.ResolveMaster(ctx, timeout)
	if err != nil {
		return nil, err
	}
	set := func(k, v string) {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	if c.Iface != "" {
		set("GLOO_SOCKET_IFNAME", c.Iface)
		set("NCCL_SOCKET_IFNAME", c.Iface)
	}
	set("MASTER_ADDR", master)
	set("MASTER_PORT", strconv.Itoa(envInt("EMBTUNE_MASTER_PORT", 29500)))
	gpus := torch.CUDADeviceCount()
	slog.Info("multi-host training", "host", c.Current, "node_rank", c.HostIndex, "hosts", len(c.Hosts),
		"master", c.Master()+" ("+master+")", "gpus", gpus, "interface", c.Iface)
	if gpus > 1 {
		set("NNODES", strconv.Itoa(len(c.Hosts)))
		set("NODE_RANK", strconv.Itoa(c.HostIndex))
		return append(args, "--nproc-per-node="+strconv.Itoa(gpus)), nil
	}
	set("RANK", strconv.Itoa(c.HostIndex))
	set("LOCAL_RANK", "0")
	set("WORLD_SIZE", strconv.Itoa(len(c.Hosts)))
	return args, nil
}
