package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/distributed"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
	"github.com/embtune/embtune/vecmath"
)

// Job is one `embtune train`: load data, optionally hold out a split or run
// k folds and evaluate base against tuned, fine-tune, and export.
type Job struct {
	ModelDir  string
	DataPath  string
	OutputDir string
	// EvalSplit holds out this fraction for evaluation (0: none).
	EvalSplit float64
	// TestPath, if set, names separate held-out pairs: all of DataPath trains,
	// and TestPath's anchors are the evaluation queries.
	TestPath string
	// Folds > 1 runs k-fold evaluation, then trains the exported model on all data.
	Folds  int
	Hyper  HyperParameters
	Device torch.Device
	// Threads is libtorch's intra-op thread count (0: all cores).
	Threads int
	// Pairs are (query, answer) pairs whose cosine is reported before and
	// after, as in the AWS write-up. Empty: the first three held-out pairs.
	Pairs [][2]string
	// CheckpointDir, CheckpointEvery and Resume are passed to Train.
	CheckpointDir   string
	CheckpointEvery int
	// MinCheckpointInterval and KeepCheckpoints are passed to Train (0: its defaults).
	MinCheckpointInterval time.Duration
	KeepCheckpoints       int
	Resume                bool
	Logger                *slog.Logger
	Progress              io.Writer
	// Group trains data-parallel across processes (see Options.Group). All
	// ranks train every fold; rank 0 alone evaluates, logs and writes the
	// output folder.
	Group               *distributed.Group
	GatherAcrossDevices bool
	// QueryPrompt and DocumentPrompt choose the prompts that anchors and
	// documents get in training and evaluation (see minilm.Options).
	QueryPrompt, DocumentPrompt hf.PromptChoice
}

// main reports whether this process writes outputs: always, unless it is a
// rank other than 0 of a group.
func (j *Job) main() bool { return j.Group == nil || j.Group.Main() }

// PairCosine is a chosen pair's cosine similarity before and after.
type PairCosine struct {
	Query  string  `json:"query"`
	Answer string  `json:"answer"`
	Base   float64 `json:"base"`
	Tuned  float64 `json:"tuned"`
}

// Report is what a job writes to OUTPUT/eval.json.
type Report struct {
	Base     IRMetrics      `json:"base,omitempty"`
	Tuned    IRMetrics      `json:"tuned,omitempty"`
	BaseStd  IRMetrics      `json:"base_std,omitempty"`
	TunedStd IRMetrics      `json:"tuned_std,omitempty"`
	Split    map[string]any `json:"split"`
	Folds    []FoldReport   `json:"folds,omitempty"`
	Pairs    []PairCosine   `json:"pairs,omitempty"`
	// Matryoshka holds the metrics at each matryoshka dim (mean over folds).
	Matryoshka []DimMetrics      `json:"matryoshka,omitempty"`
	Training   TrainingReport    `json:"training"`
	Hyper      HyperParameters   `json:"hyperparameters"`
	Output     map[string]string `json:"output"`
}

// FoldReport is one fold's base and tuned metrics.
type FoldReport struct {
	Fold  int       `json:"fold"`
	Train int       `json:"train"`
	Test  int       `json:"test"`
	Base  IRMetrics `json:"base"`
	Tuned IRMetrics `json:"tuned"`
	// Matryoshka holds the metrics at each matryoshka dim.
	Matryoshka []DimMetrics `json:"matryoshka,omitempty"`
	// Validation is what the fold's validation split decided.
	Validation *ValidationReport `json:"validation,omitempty"`
}

// TrainingReport summarises the run that produced the exported model.
type TrainingReport struct {
	Pairs       int     `json:"pairs"`
	Steps       int     `json:"steps"`
	Seconds     float64 `json:"seconds"`
	PairsPerSec float64 `json:"pairs_per_sec"`
	FinalLoss   float64 `json:"final_loss"`
	// Communication is measured in a distributed run.
	Communication *CommStats `json:"communication,omitempty"`
	// Validation is what the validation split decided: scores per
	// evaluation, best step, WiSE-FT α, and whether the base model won.
	Validation *ValidationReport `json:"validation,omitempty"`
}

func (j *Job) log() *slog.Logger {
	if j.Logger == nil || !j.main() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return j.Logger
}

func (j *Job) load(ctx context.Context) (*minilm.Model, error) {
	return minilm.Load(ctx, j.ModelDir, minilm.Options{Device: j.Device, Threads: j.Threads, MaxSeqLength: j.Hyper.MaxSeqLength,
		QueryPrompt: j.QueryPrompt, DocumentPrompt: j.DocumentPrompt})
}

// Run executes the job and writes the output folder.
func (j *Job) Run(ctx context.Context) (Report, error) {
	pairs, err := dataset.Load(j.DataPath)
	if err != nil {
		return Report{}, err
	}
	modes := 0
	for _, on := range []bool{j.EvalSplit > 0, j.Folds > 1, j.TestPath != ""} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return Report{}, fmt.Errorf("use one of an eval split, folds or test data")
	}
	if j.TestPath != "" {
		test, err := dataset.Load(j.TestPath)
		if err != nil {
			return Report{}, fmt.Errorf("test data: %w", err)
		}
		return j.runHoldout(ctx, append(append([]dataset.Pair(nil), pairs...), test...), dataset.Split{Train: pairs, Test: test},
			map[string]any{"mode": "test-data", "test_path": j.TestPath, "train": len(pairs), "test": len(test)})
	}
	if _, _, err := SplitValidation(pairs, j.Hyper); err != nil && j.Folds <= 1 && j.EvalSplit <= 0 {
		return Report{}, err
	}
	if err := j.mkdirOutput(); err != nil {
		return Report{}, err
	}
	j.removeStaleTemps()
	rep := Report{Hyper: j.Hyper, Output: map[string]string{}}
	train := pairs
	switch {
	case j.Folds > 1:
		if err := j.runFolds(ctx, pairs, &rep); err != nil {
			return rep, err
		}
	case j.EvalSplit > 0:
		split, err := dataset.TrainTestSplit(pairs, j.EvalSplit, j.Hyper.Seed)
		if err != nil {
			return rep, err
		}
		if _, _, err := SplitValidation(split.Train, j.Hyper); err != nil {
			return rep, err
		}
		if err := j.writeSplit(filepath.Join(j.OutputDir, "split"), split); err != nil {
			return rep, err
		}
		return j.runHoldout(ctx, pairs, split, map[string]any{"mode": "holdout", "test_fraction": j.EvalSplit,
			"seed": j.Hyper.Seed, "train": len(split.Train), "test": len(split.Test)})
	default:
		rep.Split = map[string]any{"mode": "none", "train": len(pairs)}
	}

	m, err := j.load(ctx)
	if err != nil {
		return rep, err
	}
	defer m.Close()
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, nil); err != nil {
		return rep, err
	}
	res, err := Train(ctx, m, train, j.Hyper, j.trainOptions())
	if err != nil {
		return rep, err
	}
	rep.Training = trainingReport(res)
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, rep.Pairs); err != nil {
		return rep, err
	}
	return rep, j.export(ctx, m, res, &rep)
}

// runHoldout evaluates base, trains on split.Train, evaluates tuned on the
// IR task of split.Test against every positive in all, and exports.
func (j *Job) runHoldout(ctx context.Context, all []dataset.Pair, split dataset.Split, info map[string]any) (Report, error) {
	log := j.log()
	rep := Report{Hyper: j.Hyper, Output: map[string]string{}, Split: info}
	if err := j.mkdirOutput(); err != nil {
		return rep, err
	}
	j.removeStaleTemps()
	if len(j.Pairs) == 0 {
		for _, p := range split.Test[:min(3, len(split.Test))] {
			j.Pairs = append(j.Pairs, [2]string{p.Anchor, p.Positive})
		}
	}
	task := dataset.NewIRTask(all, split.Test)
	m, err := j.load(ctx)
	if err != nil {
		return rep, err
	}
	defer m.Close()
	var baseDims, tunedDims []IRMetrics
	if rep.Base, baseDims, err = j.evaluateDims(ctx, m, task); err != nil {
		return rep, err
	}
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, nil); err != nil {
		return rep, err
	}
	log.Info("base model", "ndcg@10", fmt.Sprintf("%.4f", rep.Base["ndcg@10"]), "mrr@10", fmt.Sprintf("%.4f", rep.Base["mrr@10"]),
		"accuracy@1", fmt.Sprintf("%.4f", rep.Base["accuracy@1"]))
	res, err := Train(ctx, m, split.Train, j.Hyper, j.trainOptions())
	if err != nil {
		return rep, err
	}
	rep.Training = trainingReport(res)
	if rep.Tuned, tunedDims, err = j.evaluateDims(ctx, m, task); err != nil {
		return rep, err
	}
	rep.Matryoshka = j.dimMetrics(m.Dim(), baseDims, tunedDims)
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, rep.Pairs); err != nil {
		return rep, err
	}
	log.Info("tuned model", "ndcg@10", fmt.Sprintf("%.4f", rep.Tuned["ndcg@10"]), "mrr@10", fmt.Sprintf("%.4f", rep.Tuned["mrr@10"]),
		"accuracy@1", fmt.Sprintf("%.4f", rep.Tuned["accuracy@1"]))
	return rep, j.export(ctx, m, res, &rep)
}

// removeStaleTemps removes what a killed earlier run left in the output
// folder (temporary files of up to the model's size), and says so.
func (j *Job) removeStaleTemps() {
	removed, err := minilm.RemoveStaleTemps(j.OutputDir)
	if len(removed) > 0 {
		j.log().Info("removed temporary files of an earlier run", "files", len(removed), "first", removed[0])
	}
	if err != nil {
		j.log().Warn("removing temporary files of an earlier run", "err", err)
	}
}

func (j *Job) trainOptions() Options {
	return Options{CheckpointDir: j.CheckpointDir, CheckpointEvery: j.CheckpointEvery, Resume: j.Resume,
		MinCheckpointInterval: j.MinCheckpointInterval, KeepCheckpoints: j.KeepCheckpoints,
		Logger: j.log(), Progress: j.Progress, Group: j.Group, GatherAcrossDevices: j.GatherAcrossDevices}
}

// Rank 0 alone evaluates and writes; the other ranks skip these.
func (j *Job) evaluate(ctx context.Context, m *minilm.Model, task dataset.IRTask) (IRMetrics, error) {
	if !j.main() {
		return IRMetrics{}, nil
	}
	return evaluateTask(ctx, m, task)
}

func (j *Job) pairCosines(ctx context.Context, m *minilm.Model, pairs [][2]string, before []PairCosine) ([]PairCosine, error) {
	if !j.main() {
		return nil, nil
	}
	return pairCosines(ctx, m, pairs, before)
}

func (j *Job) mkdirOutput() error {
	if !j.main() {
		return nil
	}
	if err := os.MkdirAll(j.OutputDir, 0o755); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

func (j *Job) writeSplit(dir string, s dataset.Split) error {
	if !j.main() {
		return nil
	}
	_, val, err := SplitValidation(s.Train, j.Hyper)
	if err != nil {
		return err
	}
	return writeSplit(dir, s, val)
}

func trainingReport(r Result) TrainingReport {
	t := TrainingReport{Pairs: r.Pairs, Steps: r.Steps, Seconds: r.Seconds, PairsPerSec: r.PairsPerSec, Communication: r.Comm,
		Validation: r.Validation}
	if n := len(r.History); n > 0 {
		t.FinalLoss = r.History[n-1].Loss
	}
	return t
}

// runFolds evaluates base and tuned on each of k folds, each fold starting
// from the base weights, and fills the means and standard deviations.
func (j *Job) runFolds(ctx context.Context, pairs []dataset.Pair, rep *Report) error {
	folds, err := dataset.KFold(pairs, j.Folds, j.Hyper.Seed)
	if err != nil {
		return err
	}
	// A validation split too large for some fold fails here, before any training.
	for i, f := range folds {
		if _, _, err := SplitValidation(f.Train, j.Hyper); err != nil {
			return fmt.Errorf("fold %d: %w", i+1, err)
		}
	}
	rep.Split = map[string]any{"mode": "kfold", "folds": j.Folds, "seed": j.Hyper.Seed, "pairs": len(pairs)}
	for i, f := range folds {
		m, err := j.load(ctx)
		if err != nil {
			return err
		}
		if err := j.writeSplit(filepath.Join(j.OutputDir, "folds", fmt.Sprintf("fold-%d", i+1)), f); err != nil {
			m.Close()
			return err
		}
		task := dataset.NewIRTask(pairs, f.Test)
		fr := FoldReport{Fold: i + 1, Train: len(f.Train), Test: len(f.Test)}
		var baseDims, tunedDims []IRMetrics
		if fr.Base, baseDims, err = j.evaluateDims(ctx, m, task); err == nil {
			// Fold runs never checkpoint or resume: each is short and starts from the base model.
			var res Result
			res, err = Train(ctx, m, f.Train, j.Hyper, Options{Logger: j.log(), Progress: j.Progress,
				Group: j.Group, GatherAcrossDevices: j.GatherAcrossDevices})
			fr.Validation = res.Validation
		}
		if err == nil {
			fr.Tuned, tunedDims, err = j.evaluateDims(ctx, m, task)
		}
		fr.Matryoshka = j.dimMetrics(m.Dim(), baseDims, tunedDims)
		m.Close()
		if err != nil {
			return fmt.Errorf("fold %d: %w", i+1, err)
		}
		j.log().Info("fold", "fold", i+1, "base_ndcg@10", fr.Base["ndcg@10"], "tuned_ndcg@10", fr.Tuned["ndcg@10"])
		rep.Folds = append(rep.Folds, fr)
	}
	rep.Base, rep.BaseStd = meanStd(rep.Folds, func(f FoldReport) IRMetrics { return f.Base })
	rep.Tuned, rep.TunedStd = meanStd(rep.Folds, func(f FoldReport) IRMetrics { return f.Tuned })
	rep.Matryoshka = meanDimMetrics(rep.Folds)
	return nil
}

func meanStd(folds []FoldReport, get func(FoldReport) IRMetrics) (IRMetrics, IRMetrics) {
	mean, std := IRMetrics{}, IRMetrics{}
	for k := range get(folds[0]) {
		var s, ss float64
		for _, f := range folds {
			v := get(f)[k]
			s += v
			ss += v * v
		}
		n := float64(len(folds))
		mean[k] = s / n
		// Sample standard deviation (n-1), as one reports across folds.
		if len(folds) > 1 {
			std[k] = math.Sqrt(max(0, (ss-s*s/n)/(n-1)))
		}
	}
	return mean, std
}

// Evaluate embeds an IR task's queries and corpus with m (a local model, a
// server or an endpoint) and computes InformationRetrievalEvaluator's metrics.
func Evaluate(ctx context.Context, m embedding.Encoder, task dataset.IRTask) (IRMetrics, error) {
	return evaluateTask(ctx, m, task)
}

// evaluateTask embeds queries and corpus and computes the IR metrics.
func evaluateTask(ctx context.Context, m embedding.Encoder, task dataset.IRTask) (IRMetrics, error) {
	// Queries and corpus get the query and document prompts, as
	// InformationRetrievalEvaluator encodes them with encode_query and
	// encode_document.
	q, err := embedding.Queries(ctx, m, task.Queries, 0)
	if err != nil {
		return nil, fmt.Errorf("evaluate: queries: %w", err)
	}
	c, err := embedding.Documents(ctx, m, task.Corpus, 0)
	if err != nil {
		return nil, fmt.Errorf("evaluate: corpus: %w", err)
	}
	return EvaluateIR(q, c, task.Relevant, DefaultIRConfig())
}

// pairCosines computes the chosen pairs' cosines; with before set it fills
// the tuned values next to the base ones.
func pairCosines(ctx context.Context, m embedding.Encoder, pairs [][2]string, before []PairCosine) ([]PairCosine, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	queries := make([]string, len(pairs))
	answers := make([]string, len(pairs))
	for i, p := range pairs {
		queries[i], answers[i] = p[0], p[1]
	}
	q, err := embedding.Queries(ctx, m, queries, 0)
	if err != nil {
		return nil, fmt.Errorf("pair cosine: %w", err)
	}
	a, err := embedding.Documents(ctx, m, answers, 0)
	if err != nil {
		return nil, fmt.Errorf("pair cosine: %w", err)
	}
	out := make([]PairCosine, len(pairs))
	for i, p := range pairs {
		c := vecmath.Cosine(q[i], a[i])
		out[i] = PairCosine{Query: p[0], Answer: p[1], Base: c}
		if before != nil {
			out[i].Base = before[i].Base
			out[i].Tuned = c
		}
	}
	return out, nil
}

// export writes the tuned model as a sentence-transformers folder and a
// TorchScript model.pt at the root of OutputDir, the loss history, and eval.json.
func (j *Job) export(ctx context.Context, m *minilm.Model, res Result, rep *Report) error {
	if !j.main() {
		return nil
	}
	if err := m.SaveFolderWithTorchScript(ctx, j.OutputDir); err != nil {
		return err
	}
	pt := filepath.Join(j.OutputDir, "model.pt")
	rep.Output["folder"] = j.OutputDir
	rep.Output["torchscript"] = pt
	if err := writeLossCurve(j.OutputDir, res.History, res.Validation); err != nil {
		return err
	}
	rep.Output["loss_curve"] = filepath.Join(j.OutputDir, "loss.svg")
	return WriteReport(filepath.Join(j.OutputDir, "eval.json"), *rep)
}

// writeSplit records a split as train.jsonl and test.jsonl (anchor/positive
// columns), so that the exact evaluation can be rerun, also by the peer.
// validation.jsonl, when there is a validation split, holds the pairs of
// train.jsonl that Train holds out (train.jsonl stays the whole training
// pool: the peer trains on train.jsonl less validation.jsonl).
func writeSplit(dir string, s dataset.Split, validation []dataset.Pair) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]dataset.Pair{"train.jsonl": s.Train, "test.jsonl": s.Test}
	if len(validation) > 0 {
		files["validation.jsonl"] = validation
	} else if err := os.Remove(filepath.Join(dir, "validation.jsonl")); err != nil && !os.IsNotExist(err) {
		return err
	}
	for name, pairs := range files {
		err := atomicfile.Write(filepath.Join(dir, name), func(w io.Writer) error {
			return dataset.Write(w, pairs, dataset.FormatJSONL)
		})
		if err != nil {
			return fmt.Errorf("write split: %w", err)
		}
	}
	return nil
}

// WriteReport writes eval.json atomically.
func WriteReport(path string, rep Report) error {
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// PrintReport prints the before/after table and the chosen pairs.
func PrintReport(w io.Writer, rep Report) {
	if rep.Base != nil && rep.Tuned != nil {
		delta := IRMetrics{}
		for k, v := range rep.Tuned {
			delta[k] = v - rep.Base[k]
		}
		rows := map[string]IRMetrics{"base": rep.Base, "tuned": rep.Tuned, "delta": delta}
		cols := []string{"base", "tuned", "delta"}
		if rep.BaseStd != nil {
			rows["base±"] = rep.BaseStd
			rows["tuned±"] = rep.TunedStd
			cols = []string{"base", "base±", "tuned", "tuned±", "delta"}
		}
		FormatTable(w, cols, rows)
	}
	printDimTable(w, rep.Matryoshka)
	for _, f := range rep.Folds {
		if f.Validation != nil {
			fmt.Fprintf(w, "fold %d validation: %s\n", f.Fold, f.Validation.Summary())
		}
	}
	if v := rep.Training.Validation; v != nil {
		v.PrintCurve(w)
		fmt.Fprintf(w, "exported model: %s\n", v.Summary())
	}
	for _, p := range rep.Pairs {
		fmt.Fprintf(w, "cosine %.4f -> %.4f  %q\n", p.Base, p.Tuned, truncate(p.Query, 70))
	}
	keys := make([]string, 0, len(rep.Output))
	for k := range rep.Output {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%-12s %s\n", k, rep.Output[k])
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
