// Package trainer fine-tunes a minilm encoder on question/answer pairs with
// sentence-transformers' MultipleNegativesRankingLoss and evaluates it with
// the metrics of its InformationRetrievalEvaluator. One concept per file, as
// in sentence-transformers: mnrl.go, sampler.go, schedule.go, checkpoint.go,
// evaluate.go, trainer.go.
package trainer

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// HyperParameters of a fine-tuning run. Names follow sentence-transformers'
// fit()/SentenceTransformerTrainingArguments.
type HyperParameters struct {
	Epochs    int     `json:"epochs"`
	BatchSize int     `json:"batch_size"`
	LR        float64 `json:"lr"`
	// WarmupSteps, when >= 0, fixes the warmup length (fit()'s warmup_steps);
	// otherwise WarmupRatio of the total steps is used (warmup_ratio).
	WarmupSteps int     `json:"warmup_steps"`
	WarmupRatio float64 `json:"warmup_ratio"`
	WeightDecay float64 `json:"weight_decay"`
	MaxGradNorm float64 `json:"max_grad_norm"`
	// Scale multiplies cosine similarities: 20 = temperature 0.05, as MNRL's default.
	Scale float64 `json:"scale"`
	// Symmetric adds the doc-to-query direction (MultipleNegativesSymmetricRankingLoss).
	Symmetric bool `json:"symmetric"`
	// Directions, PartitionMode, HardnessMode and HardnessStrength are
	// MultipleNegativesRankingLoss's arguments of the same names (see
	// MultipleNegativesRankingLoss); Directions is comma-separated, and
	// empty means query_to_doc alone.
	Directions       string  `json:"directions,omitempty"`
	PartitionMode    string  `json:"partition_mode,omitempty"`
	HardnessMode     string  `json:"hardness_mode,omitempty"`
	HardnessStrength float64 `json:"hardness_strength,omitempty"`
	// MatryoshkaDims, when set, wraps the loss in MatryoshkaLoss (ST's
	// matryoshka_dims, comma-separated, each at most the model's dimension);
	// MatryoshkaWeights are its matryoshka_weights (empty: 1 each).
	MatryoshkaDims    string `json:"matryoshka_dims,omitempty"`
	MatryoshkaWeights string `json:"matryoshka_weights,omitempty"`
	// HardNegatives > 0 mines that many hard negatives per pair with the
	// model before training (MineHardNegatives), from the training pairs'
	// own positives; HardNegativeMargin is its absolute_margin.
	HardNegatives      int     `json:"hard_negatives,omitempty"`
	HardNegativeMargin float64 `json:"hard_negative_margin,omitempty"`
	// NoDuplicates keeps a text from appearing twice in a batch, where it
	// would be its own false negative (BatchSamplers.NO_DUPLICATES).
	NoDuplicates bool   `json:"no_duplicates"`
	Seed         uint64 `json:"seed"`
	MaxSeqLength int    `json:"max_seq_length"`
	// MiniBatchSize > 0 turns the loss into its cached form, as
	// sentence-transformers' CachedMultipleNegativesRankingLoss and its
	// mini_batch_size: the batch is embedded, and backpropagated, that many
	// pairs' texts at a time (gradcache.go), so a batch's in-batch
	// negatives are not limited by the activations' memory. 0: off.
	MiniBatchSize int `json:"mini_batch_size,omitempty"`
	// BF16 runs forward and backward under bfloat16 autocast.
	BF16 bool `json:"bf16"`
	// GradientCheckpointing recomputes each encoder layer's activations in
	// the backward pass instead of keeping them from the forward pass
	// (transformers' gradient_checkpointing): less memory for one more
	// forward pass. The step's result is the same (minilm's
	// SetGradientCheckpointing).
	GradientCheckpointing bool `json:"gradient_checkpointing,omitempty"`
	// ValidationSplit carves this fraction of the training pairs out as a
	// validation split (see validation.go); 0 turns validation off, and with
	// it evaluation during training, the best-model choice and WiSE-FT auto.
	ValidationSplit float64 `json:"validation_split"`
	// EvalStrategy, EvalSteps, MetricForBestModel and LoadBestModelAtEnd are
	// transformers' TrainingArguments of the same names: evaluate the
	// validation split at epoch ends or every EvalSteps steps, and restore
	// the weights that scored best on MetricForBestModel (an IR metric key
	// such as "ndcg@10"). The base model (step 0) is a candidate.
	EvalStrategy       string `json:"eval_strategy"`
	EvalSteps          int    `json:"eval_steps,omitempty"`
	MetricForBestModel string `json:"metric_for_best_model"`
	LoadBestModelAtEnd bool   `json:"load_best_model_at_end"`
	// WiseFT interpolates base and tuned weights (Wortsman et al. 2022,
	// WiSE-FT): "off", "auto" (α from 0, 0.1, …, 1 by the validation metric)
	// or a fixed α in [0, 1].
	WiseFT string `json:"wise_ft"`
	// BestModelSE is how many standard errors of the per-query difference
	// on the validation split an earlier step, the base model or a smaller
	// WiSE-FT α must win by to be chosen over a later step or a larger α
	// (selection.go); 0 keeps the highest score, as transformers does.
	BestModelSE float64 `json:"best_model_se"`
	// Refit, after the validation split chose the epoch and α, trains again
	// from the base model on all the training pairs (validation included)
	// for that many epochs of the same schedule, and interpolates with that
	// α (refit.go). Without a validation split nothing was chosen and
	// there is nothing to refit.
	Refit bool `json:"refit,omitempty"`
	// RefitMaxPairs limits Refit to training sets (validation included) of
	// at most this many pairs; 0 refits any size. The default preset refits
	// up to 1,000 pairs: there the validation split takes a large share of
	// the signal (on the Bedrock FAQ, 14 of 68 pairs), while on a large set
	// it costs little and a second run would double the time.
	RefitMaxPairs int `json:"refit_max_pairs,omitempty"`
}

// DefaultHyperParameters are what sentence-transformers recommends today
// for small data: lr 2e-5 (fit()'s, and its training examples'), warmup
// ratio 0.1 and the no-duplicates sampler as in those examples, weight decay
// 0.01 and clipping at 1.0, and a batch as large as the data allows, since
// every other positive in the batch is a negative. Measured on the Debian FAQ
// (96 training pairs per fold, 5 folds), NDCG@10 gains: batch 32 beat batch
// 16 with seed 7 (+0.030 against +0.016, all five folds) and on four folds of
// seed 42; batch 48 (two steps an epoch), lr 5e-5 and 20 epochs at batch 16
// did worse on fold 1. The default gained +0.029 to +0.042 over five seeds;
// the README's tables list the variants tried, none clearly better. 10
// epochs give the 10% warmup and the decay a few steps each. max_seq_length
// 128 keeps `make train` on a 2-core CPU in minutes: the Debian FAQ answers
// have a median of about 150 tokens, so their first 128 carry the topic.
//
// The default never ends worse than the base model on its validation split:
// 20% of the training pairs are held out (validation.go says why 20%), the
// base and every epoch's weights are scored on them, the best are restored
// and interpolated with the base (WiSE-FT, α chosen on the same split). An
// earlier epoch, the base model or a smaller α is chosen only when it wins
// by more than one standard error of the per-query difference
// (BestModelSE, selection.go): on 14 to 19 validation questions the highest
// score alone stopped at epoch 3 of 10 and kept the base model on folds
// where the full schedule did better on the test fold.
func DefaultHyperParameters() HyperParameters {
	return HyperParameters{
		Epochs: 10, BatchSize: 32, LR: 2e-5, WarmupSteps: -1, WarmupRatio: 0.1,
		WeightDecay: 0.01, MaxGradNorm: 1.0, Scale: 20, NoDuplicates: true, Seed: 42,
		MaxSeqLength:    128,
		ValidationSplit: DefaultValidationSplit, EvalStrategy: EvalEpoch, MetricForBestModel: "ndcg@10",
		LoadBestModelAtEnd: true, WiseFT: "auto", BestModelSE: 1, Refit: true, RefitMaxPairs: DefaultRefitMaxPairs,
	}
}

// BlogPreset reproduces the AWS sample (aws-samples/fine-tune-embedding-models-on-sagemaker):
// sentence-transformers 3.1.1 fit() with its defaults, batch 8 and 100
// epochs. fit() defaults warmup_steps to 10000, so with 85 pairs (1,100
// steps) the learning rate never leaves warmup: it peaks at 11% of 2e-5.
// The sample shuffles with a plain DataLoader, so no no-duplicates sampler,
// and keeps the model's max_seq_length (256).
func BlogPreset() HyperParameters {
	return HyperParameters{
		Epochs: 100, BatchSize: 8, LR: 2e-5, WarmupSteps: 10000, WarmupRatio: 0,
		WeightDecay: 0.01, MaxGradNorm: 1.0, Scale: 20, NoDuplicates: false, Seed: 42,
		MaxSeqLength: 256,
		EvalStrategy: EvalNo, MetricForBestModel: "ndcg@10", WiseFT: "off",
	}
}

// DefaultRefitMaxPairs is the default preset's RefitMaxPairs.
const DefaultRefitMaxPairs = 1000

// Preset returns a named preset: "default" or "blog".
func Preset(name string) (HyperParameters, error) {
	switch name {
	case "", "default":
		return DefaultHyperParameters(), nil
	case "blog":
		return BlogPreset(), nil
	}
	return HyperParameters{}, fmt.Errorf("unknown preset %q (want default or blog)", name)
}

// Validate rejects settings that cannot train.
func (h HyperParameters) Validate() error {
	switch {
	case h.Epochs < 1:
		return errors.New("epochs must be at least 1")
	case h.BatchSize < 2:
		return errors.New("batch size must be at least 2: MultipleNegativesRankingLoss needs in-batch negatives")
	case h.LR <= 0:
		return errors.New("learning rate must be positive")
	case h.WarmupSteps < 0 && (h.WarmupRatio < 0 || h.WarmupRatio >= 1):
		return errors.New("warmup ratio must be in [0, 1)")
	case h.WeightDecay < 0:
		return errors.New("weight decay must not be negative")
	case h.MaxGradNorm < 0:
		return errors.New("max grad norm must not be negative (0 disables clipping)")
	case h.Symmetric && (h.Directions != "" || h.PartitionMode != ""):
		return errors.New("symmetric is directions query_to_doc,doc_to_query with partition mode per_direction: give one or the other")
	case h.HardNegatives < 0:
		return errors.New("hard negatives must not be negative")
	case h.HardNegativeMargin < 0:
		return errors.New("hard negative margin must not be negative")
	case h.MaxSeqLength != 0 && h.MaxSeqLength < 2:
		return errors.New("max sequence length must be at least 2")
	case h.MiniBatchSize < 0:
		return fmt.Errorf("mini batch size must be at least 1, not %d (0: no gradient cache)", h.MiniBatchSize)
	case h.MiniBatchSize > h.BatchSize:
		return fmt.Errorf("mini batch size %d is larger than the batch size %d: the cached loss embeds the batch in mini-batches of at most the batch", h.MiniBatchSize, h.BatchSize)
	case h.RefitMaxPairs < 0:
		return errors.New("refit max pairs must not be negative (0: refit any size)")
	case h.BestModelSE < 0 || math.IsNaN(h.BestModelSE) || math.IsInf(h.BestModelSE, 0):
		return fmt.Errorf("best model standard errors must be a finite number, 0 or more, not %v", h.BestModelSE)
	}
	if _, _, err := ParseMatryoshka(h.MatryoshkaDims, h.MatryoshkaWeights); err != nil {
		return err
	}
	if err := h.validateValidation(); err != nil {
		return err
	}
	return h.Loss().Validate()
}

// Matryoshka returns the MatryoshkaLoss these settings train with, or
// false when no matryoshka dims are set.
func (h HyperParameters) Matryoshka() (MatryoshkaLoss, bool) {
	dims, weights, err := ParseMatryoshka(h.MatryoshkaDims, h.MatryoshkaWeights)
	if err != nil || len(dims) == 0 {
		return MatryoshkaLoss{}, false
	}
	return MatryoshkaLoss{Loss: h.Loss(), Dims: dims, Weights: weights}, true
}

// compileLoss compiles the training loss for a model whose embeddings have
// modelDim dimensions.
func (h HyperParameters) compileLoss(modelDim int) (*CompiledLoss, error) {
	if _, _, err := ParseMatryoshka(h.MatryoshkaDims, h.MatryoshkaWeights); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	if m, ok := h.Matryoshka(); ok {
		if err := m.Validate(modelDim); err != nil {
			return nil, fmt.Errorf("loss: %w", err)
		}
		return m.Compile()
	}
	return h.Loss().Compile()
}

// Loss returns the loss these settings train with.
func (h HyperParameters) Loss() MultipleNegativesRankingLoss {
	l := MultipleNegativesRankingLoss{Scale: h.Scale, PartitionMode: h.PartitionMode,
		HardnessMode: h.HardnessMode, HardnessStrength: h.HardnessStrength}
	if h.Symmetric {
		l.Directions, l.PartitionMode = []string{QueryToDoc, DocToQuery}, "per_direction"
	}
	for _, d := range strings.Split(h.Directions, ",") {
		if d = strings.TrimSpace(d); d != "" {
			l.Directions = append(l.Directions, d)
		}
	}
	return l
}

// warmup returns the warmup length for a run of total steps.
func (h HyperParameters) warmup(total int) int {
	if h.WarmupSteps >= 0 {
		return h.WarmupSteps
	}
	// transformers' get_warmup_steps: ceil(total * ratio).
	w := int(float64(total) * h.WarmupRatio)
	if float64(w) < float64(total)*h.WarmupRatio {
		w++
	}
	return w
}
