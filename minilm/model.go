// Package minilm is the all-MiniLM-L6-v2 family of sentence encoders as
// maths over libtorch: the folder that package hf reads (config,
// safetensors weights, tokenizer, pooling) becomes a BERT encoder built as a
// TorchScript module, and Encode gives the same vectors as
// SentenceTransformer.encode. It knows nothing about training, HTTP or AWS.
package minilm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/embtune/embtune/exportset"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// Options control how a model is loaded.
type Options struct {
	// Device to run on; the zero value is the CPU.
	Device torch.Device
	// Threads is libtorch's intra-op thread count; 0 means runtime.NumCPU().
	Threads int
	// MaxSeqLength overrides sentence_bert_config.json's max_seq_length when > 0.
	MaxSeqLength int
	// Quantize selects quantized Linear layers on the CPU (see Quantization).
	Quantize Quantization
	// QueryPrompt, DocumentPrompt and DefaultPrompt choose the prompts that
	// EncodeQueries, EncodeDocuments and Encode prepend, as
	// sentence-transformers' encode_query, encode_document and encode take
	// prompt_name= or prompt=; the zero value picks what those methods pick
	// from config_sentence_transformers.json.
	QueryPrompt, DocumentPrompt, DefaultPrompt hf.PromptChoice
	// BF16 runs Encode under bfloat16 autocast on Device (matrix products in
	// bf16, pooling and normalisation in fp32), as torch.autocast does around
	// SentenceTransformer.encode. Training sets its own autocast.
	BF16 bool
}

// Model is a loaded sentence encoder. Its methods are safe for concurrent
// use; torch work is serialised on the model's Worker.
type Model struct {
	Folder    hf.Folder
	Tokenizer *hf.Tokenizer
	// MaxSeqLength is the truncation length in tokens, [CLS] and [SEP] included.
	MaxSeqLength int

	device torch.Device
	bf16   bool
	worker *torch.Worker
	module *torch.Module
	// passthrough holds stored tensors the encoder does not use (BERT's pooler,
	// position_ids), kept so that an export is a complete Hugging Face folder.
	passthrough map[string]hf.RawTensor
	quant       Quantization
	// prompts are the resolved prompts by role (see Options.QueryPrompt).
	prompts map[hf.PromptRole]string
	fam     *family
	// checkpointing: the module runs its layers through embtune.checkpoint
	// (SetGradientCheckpointing).
	checkpointing bool
	closeOnce     sync.Once
}

// Load reads a sentence-transformers folder and builds its encoder.
func Load(ctx context.Context, dir string, opts Options) (*Model, error) {
	if err := checkQuantization(opts.Quantize, opts.Device); err != nil {
		return nil, err
	}
	if opts.BF16 && opts.Quantize != NoQuantization {
		return nil, fmt.Errorf("bf16 autocast and quantization %s cannot be combined: choose one", opts.Quantize)
	}
	if err := exportset.Verify(dir); err != nil {
		return nil, err
	}
	folder, text, err := hf.Open(dir, opts.MaxSeqLength)
	if err != nil {
		return nil, err
	}
	fam, err := familyOf(folder.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if opts.Quantize != NoQuantization && fam.quantized == nil {
		return nil, fmt.Errorf("quantization %s is not available for model_type %q: %s", opts.Quantize, fam.name, fam.noQuantized)
	}
	if n := fam.maxPositions(folder.Config); text.MaxSeqLength > n {
		if opts.MaxSeqLength > 0 {
			return nil, fmt.Errorf("%s: max sequence length %d exceeds the %d positions model_type %q has", dir, text.MaxSeqLength, n, fam.name)
		}
		// max_position_embeddings counts RoBERTa's padding_idx+1 offset.
		text.MaxSeqLength, folder.MaxSeqLength = n, n
	}
	if err := headOf(folder).check(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if err := fam.checkPaddingSide(folder); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	prompts, err := resolvePrompts(folder, opts)
	if err != nil {
		return nil, err
	}
	tok, maxLen := text.Tokenizer, text.MaxSeqLength
	weights, _, err := hf.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, err
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	worker, err := torch.NewWorker(threads)
	if err != nil {
		return nil, err
	}
	m := &Model{Folder: folder, Tokenizer: tok, MaxSeqLength: maxLen, device: opts.Device, bf16: opts.BF16, worker: worker, quant: opts.Quantize, prompts: prompts, fam: fam}
	err = worker.Do(ctx, func() error {
		// TorchScript's optimizing executor re-specialises graphs after the
		// first runs, which makes the first steps numerically different from
		// later ones (a resumed run would then diverge from an uninterrupted
		// one) and makes it ignore autocast after the first run. Measured: no
		// fp32 speed difference on this encoder. The setting is process-wide.
		if _, err := torch.SetGraphExecutorOptimize(false); err != nil {
			return err
		}
		return m.build(weights)
	})
	if err != nil {
		worker.Close()
		return nil, err
	}
	return m, nil
}

// build registers the weights and compiles the encoder. Runs on the worker.
func (m *Model) build(weights map[string]hf.RawTensor) error {
	cfg := m.Folder.Config
	m.fam.stripPrefixes(weights)
	shapes := m.fam.shapes(cfg)
	var problems []string
	for name, want := range shapes {
		got, ok := weights[name]
		switch {
		case !ok:
			problems = append(problems, "missing "+name)
		case !equalShape(got.Shape, want):
			problems = append(problems, fmt.Sprintf("%s has shape %v, config needs %v", name, got.Shape, want))
		case got.DType != hf.F32 && got.DType != hf.F16 && got.DType != hf.BF16:
			problems = append(problems, fmt.Sprintf("%s has dtype %s, want a float type", name, got.DType))
		default:
			if i := firstNonFinite(got); i >= 0 {
				problems = append(problems, fmt.Sprintf("%s has a non-finite value (NaN or Inf) at element %d", name, i))
			}
		}
	}
	problems = append(problems, extraLayers(weights, m.fam.layerPrefix, cfg.NumHiddenLayers)...)
	if len(problems) == 0 {
		problems = unknownLayerTensors(weights, shapes, m.fam.layerPrefix, m.fam.name)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
		}
		return fmt.Errorf("model.safetensors does not match config.json: %s", strings.Join(problems, "; "))
	}
	if m.quant != NoQuantization {
		mod, err := m.fam.quantized(m, weights)
		if err != nil {
			return err
		}
		m.module, m.passthrough = mod, weights
		return nil
	}
	mod, err := torch.NewModule("MiniLM")
	if err != nil {
		return err
	}
	for _, name := range m.fam.order(cfg) {
		if err := registerFloat32(mod, name, weights[name]); err != nil {
			mod.Close()
			return err
		}
		delete(weights, name)
	}
	if err := registerDense(mod, m.Folder.Dir, m.Folder.Dense); err != nil {
		mod.Close()
		return err
	}
	if err := mod.Define(m.fam.source(cfg, headOf(m.Folder), m.device == torch.CPU)); err != nil {
		mod.Close()
		return fmt.Errorf("compile encoder: %w", err)
	}
	if err := mod.Train(false); err != nil {
		mod.Close()
		return err
	}
	if m.device != torch.CPU {
		if err := mod.To(m.device); err != nil {
			mod.Close()
			return err
		}
	}
	m.module = mod
	m.passthrough = weights
	return nil
}

func registerFloat32(mod *torch.Module, name string, raw hf.RawTensor) error {
	t, err := tensorOf(raw)
	if err != nil {
		return fmt.Errorf("weight %s: %w", name, err)
	}
	defer t.Close()
	if raw.DType != hf.F32 {
		f, err := t.To(torch.CPU, torch.Float32)
		if err != nil {
			return fmt.Errorf("weight %s: %w", name, err)
		}
		defer f.Close()
		t = f
	}
	return mod.RegisterParameter(jitName(name), t, false)
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Close releases the module and stops the worker. It is idempotent.
func (m *Model) Close() {
	m.closeOnce.Do(func() {
		if m.worker != nil {
			m.worker.Do(context.Background(), func() error { //nolint:errcheck // closing
				m.module.Close()
				return nil
			})
			m.worker.Close()
		}
	})
}

// Dim is the embedding dimension: the head's output (pooled modes
// concatenated, then the last Dense module's out_features).
func (m *Model) Dim() int { return m.Folder.Dim() }

// Device is where the encoder runs.
func (m *Model) Device() torch.Device { return m.device }

// Worker is the OS-thread-locked worker that owns the module; the trainer
// runs its steps there.
func (m *Model) Worker() *torch.Worker { return m.worker }

// Module is the TorchScript encoder. Use it only inside Worker().Do.
func (m *Model) Module() *torch.Module { return m.module }

// DefaultBatchSize is SentenceTransformer.encode's default.
const DefaultBatchSize = 32

// ErrNoTexts is returned for an empty input list.
var ErrNoTexts = errors.New("minilm: no texts to encode")

// Encoded is the detailed result of EncodeDetailed.
type Encoded struct {
	// Vectors holds one embedding per input, in input order.
	Vectors [][]float32
	// Tokens is each input's token count after truncation, [CLS] and [SEP] included.
	Tokens []int
	// Truncated reports inputs cut at MaxSeqLength.
	Truncated []bool
}

// Encode embeds texts as SentenceTransformer.encode does: prepend the
// default prompt if the folder names one, strip, tokenize, truncate at
// MaxSeqLength, run the encoder and its head (pooling, Dense, Normalize). Texts are sorted by length so that each batch pads
// little; results come back in input order. Empty and whitespace-only texts
// get a vector ([CLS] [SEP]), as in sentence-transformers. Invalid UTF-8 is
// rejected with an error naming the input (it is never silently replaced).
func (m *Model) Encode(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	r, err := m.EncodeDetailed(ctx, texts, batchSize)
	return r.Vectors, err
}

// EncodeDetailed is Encode that also reports token counts and truncation.
// The folder's default prompt (default_prompt_name) is prepended, as
// SentenceTransformer.encode does.
func (m *Model) EncodeDetailed(ctx context.Context, texts []string, batchSize int) (Encoded, error) {
	return m.EncodePrompted(ctx, texts, batchSize, m.prompts[hf.RoleDefault])
}

// EncodePrompted is EncodeDetailed with prompt prepended to every text
// (sentence-transformers' prompt=): the prompt's tokens count towards
// max_seq_length.
func (m *Model) EncodePrompted(ctx context.Context, texts []string, batchSize int, prompt string) (Encoded, error) {
	if len(texts) == 0 {
		return Encoded{}, ErrNoTexts
	}
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	ids, truncated, err := m.tokenizeAll(texts, prompt)
	if err != nil {
		return Encoded{}, err
	}
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	// Longest first, as sentence-transformers does, so the first batch shows
	// the peak memory and later batches only shrink.
	sort.SliceStable(order, func(a, b int) bool { return len(ids[order[a]]) > len(ids[order[b]]) })

	out := Encoded{Vectors: make([][]float32, len(texts)), Tokens: make([]int, len(texts)), Truncated: truncated}
	for i := range ids {
		out.Tokens[i] = len(ids[i])
	}
	for start := 0; start < len(order); start += batchSize {
		if err := ctx.Err(); err != nil {
			return Encoded{}, err
		}
		end := min(start+batchSize, len(order))
		batch := make([][]int64, end-start)
		for i, idx := range order[start:end] {
			batch[i] = ids[idx]
		}
		vecs, err := m.EncodeIDs(ctx, batch)
		if err != nil {
			return Encoded{}, err
		}
		for i, idx := range order[start:end] {
			out.Vectors[idx] = vecs[i]
		}
	}
	return out, nil
}

// Text is how this model turns text into input ids (hf.Text): its
// tokenizer, lower-casing and max_seq_length.
func (m *Model) Text() hf.Text {
	return hf.Text{Tokenizer: m.Tokenizer, LowerCase: m.Folder.DoLowerCase, MaxSeqLength: m.MaxSeqLength}
}

// Prepare validates, lower-cases (when the folder says so) and tokenizes
// text, cut at max_seq_length: the input ids Encode embeds.
func (m *Model) Prepare(text string) (ids []int64, truncated bool, err error) {
	return m.Text().Prepare(text)
}

// WordPieces returns how many word pieces text becomes, [CLS] and [SEP]
// excluded and nothing truncated, with the lower-casing Encode applies: how
// much of the model's window text fills.
func (m *Model) WordPieces(text string) (int, error) { return m.Text().WordPieces(text) }

// tokenizeAll tokenizes in parallel; the tokenizer is read-only.
func (m *Model) tokenizeAll(texts []string, prompt string) ([][]int64, []bool, error) {
	ids := make([][]int64, len(texts))
	truncated := make([]bool, len(texts))
	errs := make([]error, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(texts); i += workers {
				ids[i], truncated[i], errs[i] = m.Prepare(prompt + texts[i])
			}
		}(w)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, nil, fmt.Errorf("text %d: %w", i, err)
		}
	}
	return ids, truncated, nil
}

// Batch is a padded batch of token ids and its attention mask, row-major [rows, cols].
type Batch struct {
	IDs, Mask  []int64
	Rows, Cols int
}

// PadBatch right-pads token id sequences with padID into one batch.
func PadBatch(seqs [][]int64, padID int64) Batch {
	cols := 0
	for _, s := range seqs {
		cols = max(cols, len(s))
	}
	b := Batch{IDs: make([]int64, len(seqs)*cols), Mask: make([]int64, len(seqs)*cols), Rows: len(seqs), Cols: cols}
	for r, s := range seqs {
		row := b.IDs[r*cols : (r+1)*cols]
		copy(row, s)
		for c := len(s); c < cols; c++ {
			row[c] = padID
		}
		for c := range s {
			b.Mask[r*cols+c] = 1
		}
	}
	return b
}

// Tensors creates the id and mask tensors of the batch on device.
func (b Batch) Tensors(device torch.Device) (ids, mask *torch.Tensor, err error) {
	ids, err = torch.FromInt64(b.IDs, int64(b.Rows), int64(b.Cols))
	if err != nil {
		return nil, nil, err
	}
	mask, err = torch.FromInt64(b.Mask, int64(b.Rows), int64(b.Cols))
	if err != nil {
		ids.Close()
		return nil, nil, err
	}
	if device != torch.CPU {
		di, err1 := ids.ToDevice(device)
		dm, err2 := mask.ToDevice(device)
		ids.Close()
		mask.Close()
		if err := errors.Join(err1, err2); err != nil {
			di.Close()
			dm.Close()
			return nil, nil, err
		}
		ids, mask = di, dm
	}
	return ids, mask, nil
}

// EncodeIDs runs one batch of already tokenized, truncated sequences through
// the encoder in inference mode and returns one vector per sequence.
func (m *Model) EncodeIDs(ctx context.Context, seqs [][]int64) ([][]float32, error) {
	if len(seqs) == 0 {
		return nil, ErrNoTexts
	}
	for i, s := range seqs {
		if len(s) == 0 || len(s) > m.MaxSeqLength {
			return nil, fmt.Errorf("sequence %d has %d tokens, want 1..%d", i, len(s), m.MaxSeqLength)
		}
	}
	batch := PadBatch(seqs, m.Tokenizer.PadID())
	var flat []float32
	err := m.worker.Do(ctx, func() error {
		return torch.InferenceMode(func() error {
			if m.bf16 {
				prev, err := torch.SetAutocast(m.device, true, torch.BFloat16)
				if err != nil {
					return err
				}
				defer torch.SetAutocast(m.device, prev, torch.BFloat16) //nolint:errcheck // restoring a flag
			}
			ids, mask, err := batch.Tensors(m.device)
			if err != nil {
				return err
			}
			defer ids.Close()
			defer mask.Close()
			emb, err := m.module.Forward(ids, mask)
			if err != nil {
				return fmt.Errorf("encoder forward: %w", err)
			}
			defer emb.Close()
			flat, err = emb.Float32s()
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	dim := m.Dim()
	if len(flat) != len(seqs)*dim {
		return nil, fmt.Errorf("encoder returned %d values for %d sequences of dimension %d", len(flat), len(seqs), dim)
	}
	if i := firstNaNOrInf(flat); i >= 0 {
		return nil, fmt.Errorf("%w: sequence %d of the batch", ErrNonFinite, i/dim)
	}
	vecs := make([][]float32, len(seqs))
	for i := range vecs {
		vecs[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return vecs, nil
}
