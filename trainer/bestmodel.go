package trainer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
)

// Evaluation is one score of the validation split during training; step 0
// is the base model.
type Evaluation struct {
	Step    int       `json:"step"`
	Epoch   float64   `json:"epoch"`
	Metrics IRMetrics `json:"metrics"`
	// Queries are the validation queries' values of the metric for the
	// best model, whose mean is Metrics[metric] (selection.go).
	Queries []float64 `json:"queries,omitempty"`
}

// AlphaScore is the validation score of one WiSE-FT interpolation.
type AlphaScore struct {
	Alpha   float64   `json:"alpha"`
	Score   float64   `json:"score"`
	Queries []float64 `json:"queries,omitempty"`
}

// ValidationReport is what the validation split decided: the score of
// every evaluation, the chosen step (load_best_model_at_end), the WiSE-FT
// α and whether the output is the base model. The chosen step is the
// latest within BestModelSE standard errors of the highest score
// (selection.go); HighestStep and HighestScore are that highest score's.
type ValidationReport struct {
	Pairs       int          `json:"pairs"`
	TrainPairs  int          `json:"train_pairs"`
	Metric      string       `json:"metric"`
	Evaluations []Evaluation `json:"evaluations"`
	BestStep    int          `json:"best_step"`
	BestEpoch   float64      `json:"best_epoch"`
	BestScore   float64      `json:"best_score"`
	LoadedBest  bool         `json:"loaded_best"`
	// BestModelSE is the tolerance, in standard errors, of the choices.
	BestModelSE  float64      `json:"best_model_se"`
	HighestStep  int          `json:"highest_step"`
	HighestScore float64      `json:"highest_score"`
	WiseFT       string       `json:"wise_ft"`
	Alpha        float64      `json:"alpha"`
	AlphaScores  []AlphaScore `json:"alpha_scores,omitempty"`
	// BaseScore and Score are the validation scores of the base model and
	// of the output weights.
	BaseScore float64 `json:"base_score"`
	Score     float64 `json:"score"`
	// BaseWon: the base model scored best on the validation split, and the
	// output is exactly the base model's weights.
	BaseWon bool `json:"base_won"`
	// RefitPairs and RefitEpochs describe the refit on all training pairs
	// (HyperParameters.Refit), when there was one.
	RefitPairs  int `json:"refit_pairs,omitempty"`
	RefitEpochs int `json:"refit_epochs,omitempty"`
}

// BaseWonMessage is what the log and the report say when the output is the base model.
const BaseWonMessage = "the base model scored best on the validation split; the output is the base model"

// bestModelFile holds the best weights in a checkpoint whose own weights
// are not the best (nor the base's, which a resumed run is handed again).
const bestModelFile = "best-model.safetensors"

// validator scores the validation split and keeps the best weights.
type validator struct {
	m      *minilm.Model
	hp     HyperParameters
	metric string
	task   dataset.IRTask
	report ValidationReport
	// base are the weights Train started from; best the best-scoring ones
	// after the base (nil while the base is best).
	base, best map[string]hf.RawTensor
}

func newValidator(ctx context.Context, m *minilm.Model, pool, train, val []dataset.Pair, hp HyperParameters) (*validator, error) {
	metric, err := MetricKey(hp.MetricForBestModel)
	if err != nil {
		return nil, err
	}
	v := &validator{m: m, hp: hp, metric: metric, task: ValidationTask(pool, val),
		report: ValidationReport{Pairs: len(val), TrainPairs: len(train), Metric: metric, WiseFT: hp.WiseFT, Alpha: 1,
			BestModelSE: hp.BestModelSE}}
	if v.base, err = m.Weights(ctx); err != nil {
		return nil, fmt.Errorf("validation: base weights: %w", err)
	}
	return v, nil
}

// evaluate scores the current weights with dropout off, then puts the
// model back in training mode.
func (v *validator) evaluate(ctx context.Context, training bool) (IRMetrics, []float64, error) {
	mod := v.m.Module()
	if training {
		if err := v.m.Worker().Do(ctx, func() error { return mod.Train(false) }); err != nil {
			return nil, nil, err
		}
	}
	met, per, err := evaluateQueries(ctx, v.m, v.task, v.metric)
	if training {
		if err2 := v.m.Worker().Do(ctx, func() error { return mod.Train(true) }); err == nil {
			err = err2
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("validation: %w", err)
	}
	return met, per, nil
}

// bestIndex is the chosen evaluation: the latest within BestModelSE
// standard errors of the highest score (chooseIndex). The choice only ever
// moves to the newest evaluation, so keeping the weights of the newest
// when it is chosen keeps the chosen ones.
func (v *validator) bestIndex(evals []Evaluation) int {
	scores := make([]float64, len(evals))
	per := make([][]float64, len(evals))
	for i, e := range evals {
		scores[i], per[i] = e.Metrics[v.metric], e.Queries
	}
	return chooseIndex(scores, per, v.hp.BestModelSE)
}

// highestIndex is the first evaluation with the highest score.
func (v *validator) highestIndex(evals []Evaluation) int {
	return chooseIndex(evalScores(evals, v.metric), nil, 0)
}

func evalScores(evals []Evaluation, metric string) []float64 {
	s := make([]float64, len(evals))
	for i, e := range evals {
		s[i] = e.Metrics[metric]
	}
	return s
}

// record evaluates at st's position, appends to st.Evaluations and keeps the
// weights when they are the best so far. During training (training true) a
// cancellation does not cut an evaluation short: the loop stops at the
// next step, after every rank has finished the same evaluation.
func (v *validator) record(ctx context.Context, st *checkpointState, epoch float64, training bool, log *slog.Logger) error {
	if training {
		ctx = context.WithoutCancel(ctx)
	}
	met, per, err := v.evaluate(ctx, training)
	if err != nil {
		return err
	}
	st.Evaluations = append(st.Evaluations, Evaluation{Step: st.Step, Epoch: epoch, Metrics: met, Queries: per})
	best := v.bestIndex(st.Evaluations)
	isBest := best == len(st.Evaluations)-1
	if isBest && st.Step > 0 {
		if v.best, err = v.m.Weights(ctx); err != nil {
			return fmt.Errorf("validation: %w", err)
		}
	}
	log.Info("validation", "step", st.Step, "epoch", fmt.Sprintf("%.2f", epoch), v.metric, fmt.Sprintf("%.4f", met[v.metric]),
		"best_step", st.Evaluations[best].Step, "best", fmt.Sprintf("%.4f", st.Evaluations[best].Metrics[v.metric]))
	return nil
}

// restore rebuilds the best weights of a resumed run from its checkpoint.
func (v *validator) restore(ctx context.Context, checkpoint string, st checkpointState) error {
	if len(st.Evaluations) == 0 {
		return nil
	}
	bestStep := st.Evaluations[v.bestIndex(st.Evaluations)].Step
	switch {
	case bestStep == 0:
		v.best = nil
	case bestStep == st.Step:
		w, err := v.m.Weights(ctx)
		if err != nil {
			return err
		}
		v.best = w
	default:
		w, _, err := hf.ReadSafetensors(filepath.Join(checkpoint, bestModelFile))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("resume: %s has no %s for the best step %d", checkpoint, bestModelFile, bestStep)
		}
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		v.best = w
	}
	return nil
}

// checkpointBest returns the weights a checkpoint at step must store
// besides its own: the best ones, unless they are the base's or the step's.
func (v *validator) checkpointBest(st checkpointState) map[string]hf.RawTensor {
	if v == nil || len(st.Evaluations) == 0 {
		return nil
	}
	if s := st.Evaluations[v.bestIndex(st.Evaluations)].Step; s == 0 || s == st.Step {
		return nil
	}
	return v.best
}

// finish evaluates the last step if it was not, loads the best weights
// (load_best_model_at_end), interpolates with the base (WiSE-FT), and
// fills the report.
func (v *validator) finish(ctx context.Context, st *checkpointState, log *slog.Logger) (*ValidationReport, error) {
	if n := len(st.Evaluations); n == 0 || st.Evaluations[n-1].Step != st.Step {
		if err := v.record(ctx, st, float64(st.Epoch), false, log); err != nil {
			return nil, err
		}
	}
	rep := &v.report
	rep.Evaluations = st.Evaluations
	bi := v.bestIndex(st.Evaluations)
	best := st.Evaluations[bi]
	rep.BestStep, rep.BestEpoch, rep.BestScore = best.Step, best.Epoch, best.Metrics[v.metric]
	hi := st.Evaluations[v.highestIndex(st.Evaluations)]
	rep.HighestStep, rep.HighestScore = hi.Step, hi.Metrics[v.metric]
	rep.BaseScore = st.Evaluations[0].Metrics[v.metric]
	final := st.Evaluations[len(st.Evaluations)-1]
	tunedScore, tunedQueries := final.Metrics[v.metric], final.Queries
	tuned := map[string]hf.RawTensor(nil)
	if v.hp.LoadBestModelAtEnd && best.Step != st.Step {
		tuned, tunedScore, tunedQueries, rep.LoadedBest = v.best, best.Metrics[v.metric], best.Queries, true
		if best.Step == 0 {
			tuned = v.base
		}
		if err := v.m.SetWeights(ctx, tuned); err != nil {
			return nil, fmt.Errorf("load best model: %w", err)
		}
		log.Info("loaded the best model", "step", best.Step, "epoch", fmt.Sprintf("%.2f", best.Epoch), v.metric, fmt.Sprintf("%.4f", tunedScore))
	}
	rep.Score = tunedScore
	alpha, auto, err := ParseWiseFT(v.hp.WiseFT)
	if err != nil {
		return nil, err
	}
	if alpha == 1 && !auto {
		rep.BaseWon = rep.LoadedBest && best.Step == 0
		return rep, nil
	}
	if tuned == nil {
		if tuned, err = v.m.Weights(ctx); err != nil {
			return nil, err
		}
	}
	if auto {
		// α from 0 to 1 in steps of 0.1: the largest α within BestModelSE
		// standard errors of the highest score (with 0, the smallest α of
		// the highest score, the one closest to the base model).
		rep.AlphaScores = []AlphaScore{{Alpha: 0, Score: rep.BaseScore, Queries: st.Evaluations[0].Queries}}
		for i := 1; i <= 10; i++ {
			a := float64(i) / 10
			s, per := tunedScore, tunedQueries
			if i < 10 {
				if s, per, err = v.scoreAlpha(ctx, tuned, a); err != nil {
					return nil, err
				}
			}
			rep.AlphaScores = append(rep.AlphaScores, AlphaScore{Alpha: a, Score: s, Queries: per})
		}
		scores := make([]float64, len(rep.AlphaScores))
		per := make([][]float64, len(rep.AlphaScores))
		for i, as := range rep.AlphaScores {
			scores[i], per[i] = as.Score, as.Queries
		}
		pick := rep.AlphaScores[chooseIndex(scores, per, v.hp.BestModelSE)]
		alpha, rep.Score = pick.Alpha, pick.Score
		log.Info("WiSE-FT", "alpha", alpha, v.metric, fmt.Sprintf("%.4f", pick.Score), "base", fmt.Sprintf("%.4f", rep.BaseScore),
			"tuned", fmt.Sprintf("%.4f", tunedScore))
	}
	rep.Alpha = alpha
	w, err := interpolate(v.base, tuned, alpha)
	if err != nil {
		return nil, err
	}
	if err := v.m.SetWeights(ctx, w); err != nil {
		return nil, fmt.Errorf("wise-ft: %w", err)
	}
	if !auto && alpha > 0 && alpha < 1 {
		met, per, err := v.evaluate(ctx, false)
		if err != nil {
			return nil, err
		}
		rep.Score = met[v.metric]
		rep.AlphaScores = []AlphaScore{{Alpha: alpha, Score: rep.Score, Queries: per}}
	}
	rep.BaseWon = alpha == 0 || (rep.LoadedBest && best.Step == 0)
	return rep, nil
}

func (v *validator) scoreAlpha(ctx context.Context, tuned map[string]hf.RawTensor, alpha float64) (float64, []float64, error) {
	w, err := interpolate(v.base, tuned, alpha)
	if err != nil {
		return 0, nil, err
	}
	if err := v.m.SetWeights(ctx, w); err != nil {
		return 0, nil, fmt.Errorf("wise-ft: %w", err)
	}
	met, per, err := v.evaluate(ctx, false)
	if err != nil {
		return 0, nil, err
	}
	return met[v.metric], per, nil
}

// interpolate returns (1-α)·base + α·tuned for every float32 tensor (WiSE-FT's
// weight-space ensemble); α = 0 returns base itself and α = 1 tuned, exactly.
func interpolate(base, tuned map[string]hf.RawTensor, alpha float64) (map[string]hf.RawTensor, error) {
	switch alpha {
	case 0:
		return base, nil
	case 1:
		return tuned, nil
	}
	out := make(map[string]hf.RawTensor, len(tuned))
	for name, t := range tuned {
		b, ok := base[name]
		if !ok || t.DType != hf.F32 || b.DType != hf.F32 {
			out[name] = t
			continue
		}
		if len(b.Data) != len(t.Data) {
			return nil, fmt.Errorf("wise-ft: %s has %d bytes in the base model and %d tuned", name, len(b.Data), len(t.Data))
		}
		data := make([]byte, len(t.Data))
		for i := 0; i+4 <= len(data); i += 4 {
			x := float64(math.Float32frombits(binary.LittleEndian.Uint32(b.Data[i:])))
			y := float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[i:])))
			binary.LittleEndian.PutUint32(data[i:], math.Float32bits(float32((1-alpha)*x+alpha*y)))
		}
		out[name] = hf.RawTensor{DType: t.DType, Shape: t.Shape, Data: data}
	}
	return out, nil
}

// formatAlpha prints α without trailing zeros.
func formatAlpha(a float64) string { return strconv.FormatFloat(a, 'f', -1, 64) }

// bestTuned is the best validation score of any trained step.
func bestTuned(r *ValidationReport) float64 {
	best := math.Inf(-1)
	for _, e := range r.Evaluations {
		if e.Step > 0 {
			best = max(best, e.Metrics[r.Metric])
		}
	}
	return best
}

// Summary is one line: the base and best scores, the WiSE-FT α, and the
// plain statement when the output is the base model.
func (r *ValidationReport) Summary() string {
	if r.BaseWon {
		return fmt.Sprintf("%s (%s on %d validation pairs: base %.4f, best tuned %.4f)",
			BaseWonMessage, r.Metric, r.Pairs, r.BaseScore, bestTuned(r))
	}
	s := fmt.Sprintf("%s on %d validation pairs: base %.4f, chose %.4f at step %d (epoch %.2f)",
		r.Metric, r.Pairs, r.BaseScore, r.BestScore, r.BestStep, r.BestEpoch)
	if r.HighestStep != r.BestStep {
		unit := "standard errors"
		if r.BestModelSE == 1 {
			unit = "standard error"
		}
		s += fmt.Sprintf(" (the highest, %.4f at step %d, wins by less than %s %s)",
			r.HighestScore, r.HighestStep, formatAlpha(r.BestModelSE), unit)
	}
	if last := len(r.Evaluations) - 1; !r.LoadedBest && last >= 0 && r.Evaluations[last].Step != r.BestStep {
		e := r.Evaluations[last]
		s += fmt.Sprintf(", kept the last step %d (%.4f)", e.Step, e.Metrics[r.Metric])
	}
	if r.Alpha != 1 || len(r.AlphaScores) > 0 {
		s += fmt.Sprintf(", WiSE-FT α %s: %.4f", formatAlpha(r.Alpha), r.Score)
	}
	if r.RefitPairs > 0 {
		s += fmt.Sprintf("; refit on all %d training pairs for %d epochs with that α", r.RefitPairs, r.RefitEpochs)
	}
	return s
}

// PrintCurve prints the validation score of every evaluation.
func (r *ValidationReport) PrintCurve(w io.Writer) {
	fmt.Fprintf(w, "%-6s %-7s %s\n", "step", "epoch", "validation "+r.Metric)
	for _, e := range r.Evaluations {
		mark := ""
		if e.Step == r.BestStep {
			mark = "  chosen"
		}
		if e.Step == r.HighestStep && r.HighestStep != r.BestStep {
			mark = "  highest"
		}
		fmt.Fprintf(w, "%-6d %-7.2f %.4f%s\n", e.Step, e.Epoch, e.Metrics[r.Metric], mark)
	}
}
