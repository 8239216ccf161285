package corpus

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/topk"
	"github.com/embtune/embtune/vecmath"
)

// Format names the index file layout: a safetensors file with an F32
// tensor "embeddings" [chunks, dim] of L2-normalised vectors, a U8 tensor
// "chunks" holding the chunks as UTF-8 JSON, and Info as JSON in the
// metadata key "embtune_index". The chunks are a tensor, not metadata,
// because safetensors caps its header at 100 MB. Python reads it with
// safetensors.numpy.load_file and json.loads(bytes(t["chunks"])).
const Format = "embtune-index/1"

// defaultBatchSize is SentenceTransformer.encode's default batch.
const defaultBatchSize = 32

// Info describes how an index was built.
type Info struct {
	Format string `json:"format"`
	// Model is the model folder as given; ModelFingerprint identifies its
	// weights and configuration (ModelFingerprint), checked when the index
	// is queried.
	Model            string   `json:"model"`
	ModelFingerprint string   `json:"model_fingerprint"`
	Dim              int      `json:"dim"`
	MaxSeqLength     int      `json:"max_seq_length"`
	Chunking         Chunking `json:"chunking"`
	Documents        int      `json:"documents"`
	// DocumentPrompt is the prompt the chunks were embedded with ("" for
	// none); nil in indexes written before it was recorded. Queries are
	// only comparable with chunks embedded under the same document prompt
	// (CheckDocumentPrompt).
	DocumentPrompt *string `json:"document_prompt,omitempty"`
}

// CheckDocumentPrompt refuses info whose chunks were embedded with another
// document prompt than prompt, the one this run would embed documents with
// (the folder's, or --document-prompt's): the stored vectors and this run's
// would not match. An index that predates the record passes.
func CheckDocumentPrompt(info Info, prompt string) error {
	if info.DocumentPrompt == nil || *info.DocumentPrompt == prompt {
		return nil
	}
	return fmt.Errorf("the index's chunks were embedded with document prompt %q, and this run's document prompt is %q: pass --document-prompt %q (or the matching --document-prompt-name), or rebuild the index",
		*info.DocumentPrompt, prompt, *info.DocumentPrompt)
}

// Chunk is one indexed passage: Doc's text[Start:End].
type Chunk struct {
	ID     string `json:"id"` // Doc#N, N counting from 0
	Doc    string `json:"doc"`
	Title  string `json:"title,omitempty"`
	Start  int    `json:"start"`
	End    int    `json:"end"`
	Tokens int    `json:"tokens"`
	Text   string `json:"text"`
}

// Index holds chunks and their embeddings.
type Index struct {
	Info   Info
	Chunks []Chunk
	// vectors holds len(Chunks) rows of Info.Dim L2-normalised floats.
	vectors []float32
}

// Stats reports what Build did.
type Stats struct {
	Documents int
	Chunks    int
	// Truncated counts chunks the encoder had to cut: whitespace-free runs
	// longer than a chunk.
	Truncated int
}

// fingerprintFiles are what makes a model folder embed the way it does:
// weights, tokenizer, and the configuration of its modules.
var fingerprintFiles = []string{"model.safetensors", "tokenizer.json", "config.json", "modules.json",
	"sentence_bert_config.json", "1_Pooling/config.json"}

// ModelFingerprint returns a SHA-256 over a model folder's weights,
// tokenizer and module configuration (the files that exist of
// fingerprintFiles, each with its name): two folders with the same
// fingerprint embed text the same way.
func ModelFingerprint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		return "", fmt.Errorf("model fingerprint: %w", err)
	}
	h := sha256.New()
	for _, name := range fingerprintFiles {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("model fingerprint: %w", err)
		}
		fmt.Fprintf(h, "%s\x00", name)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("model fingerprint: %w", err)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DefaultChunking fills a model's window: its max_seq_length less [CLS] and
// [SEP], with an eighth of that as overlap.
func DefaultChunking(text hf.Text) Chunking {
	n := max(1, text.MaxSeqLength-2)
	return Chunking{MaxTokens: n, Overlap: n / 8}
}

// Model is what an index is built with: the model's folder (its identity
// and dimension), how its tokenizer fills the window (chunking), and an
// encoder: the folder's weights loaded here (minilm.Model), or a server or
// SageMaker endpoint that serves that model.
type Model struct {
	Folder  hf.Folder
	Text    hf.Text
	Encoder embedding.Encoder
	// PromptTokens is how many word pieces the document prompt takes of
	// each chunk's window (0 without one): a chunk must fit beside it.
	PromptTokens int
	// Dim is the dimension of Encoder's vectors when it truncates them
	// (embedding.Truncating, a Matryoshka model's first dims); 0: the
	// folder's embedding dimension.
	Dim int
	// DocumentPrompt is the prompt Encoder prepends to documents ("" for
	// none), recorded in the index's Info.
	DocumentPrompt string
}

// Build chunks docs and embeds the chunks with m, batchSize texts at a time.
// progress, when not nil, is called with the chunks embedded so far.
func Build(ctx context.Context, m Model, docs []Document, c Chunking, batchSize int, progress func(done, total int)) (*Index, Stats, error) {
	info, chunks, st, err := Split(m, docs, c)
	if err != nil {
		return nil, st, err
	}
	x := &Index{Info: info, Chunks: chunks}
	texts := make([]string, len(x.Chunks))
	for i, ch := range x.Chunks {
		texts[i] = ch.Text
	}
	vecs, err := Embed(ctx, m.Encoder, texts, batchSize, progress)
	if err != nil {
		return nil, st, fmt.Errorf("index: %w", err)
	}
	x.vectors = make([]float32, 0, len(vecs)*x.Info.Dim)
	for i, v := range vecs {
		if len(v) != x.Info.Dim {
			return nil, st, fmt.Errorf("index: chunk %d has a vector of %d values; the model's dimension is %d", i, len(v), x.Info.Dim)
		}
		x.vectors = append(x.vectors, v...)
	}
	return x, st, nil
}

// Split chunks docs for m, as Build does before embedding, and describes
// the index they make. Stores that embed only what they lack (pgstore)
// start here.
func Split(m Model, docs []Document, c Chunking) (Info, []Chunk, Stats, error) {
	var st Stats
	if len(docs) == 0 {
		return Info{}, nil, st, errors.New("index: no documents")
	}
	if c.MaxTokens > m.Text.MaxSeqLength-2-m.PromptTokens {
		return Info{}, nil, st, fmt.Errorf("index: chunks of %d tokens exceed the model's max_seq_length %d (less [CLS], [SEP] and %d tokens of document prompt)",
			c.MaxTokens, m.Text.MaxSeqLength, m.PromptTokens)
	}
	fp, err := ModelFingerprint(m.Folder.Dir)
	if err != nil {
		return Info{}, nil, st, err
	}
	dim := m.Folder.Dim() // after pooling and Dense modules
	if m.Dim > 0 {
		dim = m.Dim
	}
	prompt := m.DocumentPrompt
	info := Info{Format: Format, Model: m.Folder.Dir, ModelFingerprint: fp, Dim: dim,
		MaxSeqLength: m.Text.MaxSeqLength, Chunking: c, Documents: len(docs), DocumentPrompt: &prompt}
	var chunks []Chunk
	for _, d := range docs {
		spans, err := c.Split(d.Text, m.Text.WordPieces)
		if err != nil {
			return Info{}, nil, st, fmt.Errorf("index: document %s: %w", d.ID, err)
		}
		for i, s := range spans {
			if s.Truncated {
				st.Truncated++
			}
			chunks = append(chunks, Chunk{ID: fmt.Sprintf("%s#%d", d.ID, i), Doc: d.ID, Title: d.Title,
				Start: s.Start, End: s.End, Tokens: s.Tokens, Text: d.Text[s.Start:s.End]})
		}
	}
	if len(chunks) == 0 {
		return Info{}, nil, st, errors.New("index: the documents hold no text")
	}
	st.Documents, st.Chunks = len(docs), len(chunks)
	return info, chunks, st, nil
}

// Embed encodes texts as documents (with the document prompt, see
// embedding.Documents) and L2-normalises them, as Build does;
// progress, when not nil, is called with the texts embedded so far.
func Embed(ctx context.Context, enc embedding.Encoder, texts []string, batchSize int, progress func(done, total int)) ([][]float32, error) {
	vecs, err := encodeWithProgress(ctx, enc, texts, batchSize, progress)
	if err != nil {
		return nil, err
	}
	for i, v := range vecs {
		vecs[i] = vecmath.Normalized(v)
	}
	return vecs, nil
}

// encodeWithProgress encodes texts in groups of similar length so progress
// can be reported without giving up Encode's length-sorted batching.
func encodeWithProgress(ctx context.Context, m embedding.Encoder, texts []string, batchSize int, progress func(done, total int)) ([][]float32, error) {
	if batchSize <= 0 {
		batchSize = defaultBatchSize
	}
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(texts[order[a]]) > len(texts[order[b]]) })
	out := make([][]float32, len(texts))
	group := batchSize * 8
	for start := 0; start < len(order); start += group {
		end := min(start+group, len(order))
		part := make([]string, end-start)
		for i, idx := range order[start:end] {
			part[i] = texts[idx]
		}
		vecs, err := embedding.Documents(ctx, m, part, batchSize)
		if err != nil {
			return nil, err
		}
		for i, idx := range order[start:end] {
			out[idx] = vecs[i]
		}
		if progress != nil {
			progress(end, len(texts))
		}
	}
	return out, nil
}

// FromVectors makes an index of given chunks and their embeddings, which
// are L2-normalised here.
func FromVectors(info Info, chunks []Chunk, vecs [][]float32) (*Index, error) {
	if len(chunks) != len(vecs) {
		return nil, fmt.Errorf("index: %d chunks but %d vectors", len(chunks), len(vecs))
	}
	if len(chunks) == 0 {
		return nil, errors.New("index: no chunks")
	}
	info.Format = Format
	info.Dim = len(vecs[0])
	x := &Index{Info: info, Chunks: chunks, vectors: make([]float32, 0, len(vecs)*info.Dim)}
	for i, v := range vecs {
		if len(v) != info.Dim {
			return nil, fmt.Errorf("index: vector %d has %d values, want %d", i, len(v), info.Dim)
		}
		x.vectors = append(x.vectors, vecmath.Normalized(v)...)
	}
	return x, nil
}

// Vector returns chunk i's normalised embedding.
func (x *Index) Vector(i int) []float32 {
	d := x.Info.Dim
	return x.vectors[i*d : (i+1)*d : (i+1)*d]
}

// Len is the number of chunks.
func (x *Index) Len() int { return len(x.Chunks) }

// Hit is one search result: a chunk and its cosine similarity to the query.
type Hit struct {
	Chunk int     `json:"-"`
	Score float32 `json:"score"`
}

// Search returns the k chunks most similar to query by cosine similarity,
// best first; equal scores keep index order (package topk). Like util.semantic_search it
// ranks every chunk (exact search).
func (x *Index) Search(query []float32, k int) ([]Hit, error) {
	if len(query) != x.Info.Dim {
		return nil, fmt.Errorf("search: query has %d dimensions, the index %d", len(query), x.Info.Dim)
	}
	if k < 1 {
		return nil, fmt.Errorf("search: top k must be at least 1, got %d", k)
	}
	if !vecmath.Finite(query) {
		return nil, errors.New("search: the query vector is not finite")
	}
	q := vecmath.Normalized(query)
	d := x.Info.Dim
	n := len(x.vectors) / d
	h := topk.New[float32](min(k, n))
	for i := 0; i < n; i++ {
		h.Offer(i, vecmath.Dot(q, x.vectors[i*d:(i+1)*d]))
	}
	best := h.Sorted()
	out := make([]Hit, len(best))
	for r, b := range best {
		out[r] = Hit{Chunk: b.Index, Score: b.Score}
	}
	return out, nil
}

// Result is one query's hits with their chunks, as `embtune query --json`
// and POST /search report them.
type Result struct {
	Query string  `json:"query"`
	Hits  []Match `json:"hits"`
}

// Match is a hit with its rank (from 1) and chunk.
type Match struct {
	Rank  int     `json:"rank"`
	Score float32 `json:"score"`
	Chunk
}

// Query searches for the embedding vec of the text query, as Search, and
// returns the hits with their chunks.
func (x *Index) Query(query string, vec []float32, k int) (Result, error) {
	hits, err := x.Search(vec, k)
	if err != nil {
		return Result{}, err
	}
	res := Result{Query: query, Hits: make([]Match, len(hits))}
	for r, h := range hits {
		res.Hits[r] = Match{Rank: r + 1, Score: h.Score, Chunk: x.Chunks[h.Chunk]}
	}
	return res, nil
}

// Save writes the index to path atomically.
func (x *Index) Save(path string) error {
	info, err := json.Marshal(x.Info)
	if err != nil {
		return err
	}
	if len(x.vectors) != len(x.Chunks)*x.Info.Dim {
		return fmt.Errorf("save index: %d chunks but %d vectors", len(x.Chunks), len(x.vectors)/max(1, x.Info.Dim))
	}
	chunks, err := json.Marshal(x.Chunks)
	if err != nil {
		return err
	}
	data := make([]byte, 4*len(x.vectors))
	for i, v := range x.vectors {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	tensors := map[string]hf.RawTensor{
		"embeddings": {DType: hf.F32, Shape: []int64{int64(len(x.Chunks)), int64(x.Info.Dim)}, Data: data},
		"chunks":     {DType: hf.U8, Shape: []int64{int64(len(chunks))}, Data: chunks},
	}
	if err := hf.WriteSafetensors(path, tensors, map[string]string{"embtune_index": string(info)}); err != nil {
		return fmt.Errorf("save index: %w", err)
	}
	return nil
}

// Load reads an index written by Save, checking that its parts agree.
func Load(path string) (*Index, error) {
	tensors, meta, err := hf.ReadSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("load index: %w", err)
	}
	x := &Index{}
	if meta["embtune_index"] == "" {
		return nil, fmt.Errorf("load index %s: not an embtune index (no embtune_index metadata)", path)
	}
	if err := json.Unmarshal([]byte(meta["embtune_index"]), &x.Info); err != nil {
		return nil, fmt.Errorf("load index %s: embtune_index metadata: %w", path, err)
	}
	if x.Info.Format != Format {
		return nil, fmt.Errorf("load index %s: format %q, this embtune reads %q", path, x.Info.Format, Format)
	}
	ct, ok := tensors["chunks"]
	if !ok || ct.DType != hf.U8 || len(ct.Shape) != 1 {
		return nil, fmt.Errorf("load index %s: no U8 chunks tensor", path)
	}
	if err := json.Unmarshal(ct.Data, &x.Chunks); err != nil {
		return nil, fmt.Errorf("load index %s: chunks: %w", path, err)
	}
	for i, c := range x.Chunks {
		if c.Start < 0 || c.End < c.Start {
			return nil, fmt.Errorf("load index %s: chunk %d has offsets [%d, %d)", path, i, c.Start, c.End)
		}
	}
	t, ok := tensors["embeddings"]
	switch {
	case !ok:
		return nil, fmt.Errorf("load index %s: no embeddings tensor", path)
	case t.DType != hf.F32 || len(t.Shape) != 2:
		return nil, fmt.Errorf("load index %s: embeddings are %s %v, want F32 [chunks, dim]", path, t.DType, t.Shape)
	case t.Shape[0] != int64(len(x.Chunks)) || t.Shape[1] != int64(x.Info.Dim) || x.Info.Dim < 1:
		return nil, fmt.Errorf("load index %s: embeddings %v do not match %d chunks of dimension %d", path, t.Shape, len(x.Chunks), x.Info.Dim)
	}
	// Checked without overflow, whatever the safetensors reader accepted.
	if n := len(x.Chunks); x.Info.Dim > math.MaxInt/4/max(1, n) || len(t.Data) != 4*n*x.Info.Dim {
		return nil, fmt.Errorf("load index %s: embeddings hold %d bytes, not 4 × %d chunks × dimension %d", path, len(t.Data), n, x.Info.Dim)
	}
	x.vectors = make([]float32, len(t.Data)/4)
	for i := range x.vectors {
		v := math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("load index %s: chunk %d's embedding is not finite", path, i/x.Info.Dim)
		}
		x.vectors[i] = v
	}
	return x, nil
}

// CheckModel reports an index built with another model than the folder dir
// holds (other weights, tokenizer or module configuration): its vectors
// would not be comparable with the queries.
func (x *Index) CheckModel(dir string) error {
	fp, err := ModelFingerprint(dir)
	if err != nil {
		return err
	}
	if fp != x.Info.ModelFingerprint {
		return fmt.Errorf("the index was built with another model (%s, fingerprint %.12s) than %s (fingerprint %.12s): query with that model or rebuild the index",
			x.Info.Model, x.Info.ModelFingerprint, dir, fp)
	}
	return nil
}
