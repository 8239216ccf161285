package minilm

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/vecmath"

	"github.com/embtune/embtune/torch"
)

func modelDir(t testing.TB) string { return testmodel.Dir(t) }

var (
	sharedOnce  sync.Once
	sharedModel *Model
	sharedErr   error
)

// sharedTestModel loads the model once for the package's tests.
func sharedTestModel(t testing.TB) *Model {
	t.Helper()
	dir := modelDir(t)
	sharedOnce.Do(func() { sharedModel, sharedErr = Load(context.Background(), dir, Options{}) })
	require.NoError(t, sharedErr)
	return sharedModel
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedModel != nil {
		sharedModel.Close()
	}
	os.Exit(code)
}

type goldenText struct {
	Text  string  `json:"text"`
	HFIDs []int64 `json:"hf_ids"`
	IDs   []int64 `json:"ids"`
}

type goldenMeta struct {
	Count    int `json:"count"`
	Dim      int `json:"dim"`
	SeedPair struct {
		Query  string  `json:"query"`
		Answer string  `json:"answer"`
		Cosine float64 `json:"cosine"`
	} `json:"seed_pair"`
}

func readGolden(t testing.TB) ([]goldenText, [][]float32, goldenMeta) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "golden")
	var meta goldenMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &meta))

	f, err := os.Open(filepath.Join(dir, "tokens.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var texts []goldenText
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var g goldenText
		require.NoError(t, json.Unmarshal(sc.Bytes(), &g))
		texts = append(texts, g)
	}
	require.NoError(t, sc.Err())
	require.Len(t, texts, meta.Count)

	raw, err := os.ReadFile(filepath.Join(dir, "embeddings.f32"))
	require.NoError(t, err)
	require.Len(t, raw, meta.Count*meta.Dim*4)
	emb := make([][]float32, meta.Count)
	for i := range emb {
		emb[i] = make([]float32, meta.Dim)
		for j := range emb[i] {
			emb[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[(i*meta.Dim+j)*4:]))
		}
	}
	return texts, emb, meta
}

// TestEmbeddingsMatchSentenceTransformers is the parity gate: every golden
// text, embedded by sentence-transformers, against our Encode.
func TestEmbeddingsMatchSentenceTransformers(t *testing.T) {
	m := sharedTestModel(t)
	golden, want, _ := readGolden(t)
	texts := make([]string, len(golden))
	for i, g := range golden {
		texts[i] = g.Text
	}
	got, err := m.Encode(context.Background(), texts, 32)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	worstCos, worstDiff := 1.0, 0.0
	for i := range got {
		require.Len(t, got[i], len(want[i]))
		c := vecmath.Cosine(got[i], want[i])
		worstCos = math.Min(worstCos, c)
		for j := range got[i] {
			worstDiff = math.Max(worstDiff, math.Abs(float64(got[i][j]-want[i][j])))
		}
		assert.GreaterOrEqual(t, c, 0.99999, "text %d %.60q", i, texts[i])
	}
	assert.LessOrEqual(t, worstDiff, 1e-4)
	t.Logf("%d texts: min cosine %.8f, max |diff| %.3g", len(got), worstCos, worstDiff)
}

func TestBatchingDoesNotChangeVectors(t *testing.T) {
	m := sharedTestModel(t)
	golden, want, _ := readGolden(t)
	texts := []string{golden[0].Text, golden[150].Text, golden[len(golden)-1].Text, ""}
	idx := []int{0, 150, len(golden) - 1}
	for _, bs := range []int{1, 3, 128} {
		got, err := m.Encode(context.Background(), texts, bs)
		require.NoError(t, err)
		for k, i := range idx {
			assert.GreaterOrEqual(t, vecmath.Cosine(got[k], want[i]), 0.99999, "batch size %d, text %d", bs, i)
		}
	}
}

func TestSeedPairCosine(t *testing.T) {
	m := sharedTestModel(t)
	_, _, meta := readGolden(t)
	vecs, err := m.Encode(context.Background(), []string{meta.SeedPair.Query, meta.SeedPair.Answer}, 0)
	require.NoError(t, err)
	assert.InDelta(t, meta.SeedPair.Cosine, vecmath.Cosine(vecs[0], vecs[1]), 5e-5)
}

func TestEncodeDetailedReportsTruncation(t *testing.T) {
	m := sharedTestModel(t)
	long := ""
	for i := 0; i < 400; i++ {
		long += "word "
	}
	r, err := m.EncodeDetailed(context.Background(), []string{"short", long}, 0)
	require.NoError(t, err)
	assert.Equal(t, []bool{false, true}, r.Truncated)
	assert.Equal(t, 3, r.Tokens[0])
	assert.Equal(t, m.MaxSeqLength, r.Tokens[1])
}

func TestEncodeBadInput(t *testing.T) {
	m := sharedTestModel(t)
	_, err := m.Encode(context.Background(), nil, 0)
	assert.ErrorIs(t, err, ErrNoTexts)
	_, err = m.Encode(context.Background(), []string{"fine", "bad \xff\xfe utf-8"}, 0)
	require.Error(t, err)
	assert.ErrorIs(t, err, hf.ErrInvalidUTF8)
	assert.Contains(t, err.Error(), "text 1")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = m.Encode(ctx, []string{"a"}, 0)
	assert.ErrorIs(t, err, context.Canceled)

	_, err = m.EncodeIDs(context.Background(), [][]int64{{101, 99999999, 102}})
	assert.Error(t, err, "an out-of-vocabulary id is a libtorch error, not a crash")
}

// copyModel makes a private copy of the model folder to damage.
func copyModel(t *testing.T) string {
	t.Helper()
	src := modelDir(t)
	dst := t.TempDir()
	for _, name := range []string{"config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json", "1_Pooling/config.json"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, name), b, 0o644))
	}
	require.NoError(t, os.Symlink(mustAbs(t, filepath.Join(src, "model.safetensors")), filepath.Join(dst, "model.safetensors")))
	return dst
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}

func TestLoadBadFolders(t *testing.T) {
	ctx := context.Background()
	src := modelDir(t)
	weights, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)

	cases := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		wantErr string
	}{
		{"missing folder", func(t *testing.T, dir string) { require.NoError(t, os.RemoveAll(dir)) }, "no such file"},
		{"missing weights", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "model.safetensors")))
		}, "model.safetensors"},
		{"truncated safetensors", func(t *testing.T, dir string) {
			replaceWeights(t, dir, weights[:len(weights)/2])
		}, "truncated"},
		{"corrupted safetensors header", func(t *testing.T, dir string) {
			bad := append([]byte{}, weights...)
			copy(bad[8:], []byte("{not json"))
			replaceWeights(t, dir, bad)
		}, "header is not a JSON object"},
		{"tiny file", func(t *testing.T, dir string) { replaceWeights(t, dir, []byte{1, 2, 3}) }, "too short"},
		{"config with wrong shapes", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["intermediate_size"] = 3072 })
		}, "does not match config.json"},
		{"hidden size differs from pooling", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["hidden_size"] = 768 })
		}, "word_embedding_dimension"},
		{"heads do not divide hidden", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["num_attention_heads"] = 5 })
		}, "multiple of num_attention_heads"},
		{"more layers than weights", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["num_hidden_layers"] = 7 })
		}, "missing encoder.layer.6"},
		{"malformed config", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o644))
		}, "malformed JSON"},
		{"unknown pooling mode", func(t *testing.T, dir string) {
			editJSON(t, filepath.Join(dir, "1_Pooling", "config.json"), func(c map[string]any) { c["pooling_mode"] = "median" })
		}, `unknown pooling mode "median"`},
		{"malformed tokenizer", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("[1,2"), 0o644))
		}, "tokenizer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyModel(t)
			tc.damage(t, dir)
			m, err := Load(ctx, dir, Options{Threads: 1})
			if m != nil {
				m.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func replaceWeights(t *testing.T, dir string, data []byte) {
	p := filepath.Join(dir, "model.safetensors")
	require.NoError(t, os.Remove(p))
	require.NoError(t, os.WriteFile(p, data, 0o644))
}

func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	edit(c)
	b, err = json.Marshal(c)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func TestSaveTorchScriptAndFolderRoundTrip(t *testing.T) {
	m := sharedTestModel(t)
	ctx := context.Background()
	dir := t.TempDir()
	pt := filepath.Join(dir, "model.pt")
	require.NoError(t, m.SaveTorchScript(ctx, pt))

	texts := []string{"What are Agents, and how can they be used?", "naïve résumé", ""}
	want, err := m.Encode(ctx, texts, 0)
	require.NoError(t, err)

	// The archive runs on its own: load it with libtorch and compare.
	w, err := torch.NewWorker(1)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Do(ctx, func() error {
		mod, err := torch.LoadModule(pt, torch.CPU)
		require.NoError(t, err)
		defer mod.Close()
		seqs := make([][]int64, len(texts))
		for i, s := range texts {
			seqs[i], _, err = m.Tokenizer.Encode(s, m.MaxSeqLength)
			require.NoError(t, err)
		}
		b := PadBatch(seqs, 0)
		ids, mask, err := b.Tensors(torch.CPU)
		require.NoError(t, err)
		defer ids.Close()
		defer mask.Close()
		return torch.NoGrad(func() error {
			out, err := mod.Forward(ids, mask)
			require.NoError(t, err)
			defer out.Close()
			flat, err := out.Float32s()
			require.NoError(t, err)
			for i := range texts {
				assert.GreaterOrEqual(t, vecmath.Cosine(flat[i*m.Dim():(i+1)*m.Dim()], want[i]), 0.99999)
			}
			return nil
		})
	}))

	// The HF folder export reloads to the same vectors.
	out := filepath.Join(dir, "folder")
	require.NoError(t, m.SaveFolder(ctx, out))
	m2, err := Load(ctx, out, Options{Threads: 1})
	require.NoError(t, err)
	defer m2.Close()
	got, err := m2.Encode(ctx, texts, 0)
	require.NoError(t, err)
	for i := range texts {
		assert.Equal(t, want[i], got[i])
	}
}

// TestEncodeMemoryIsFlat encodes a corpus repeatedly and checks that the
// resident set does not keep growing (docs/benchmarks.md's memory figure comes from
// the benchmark in bench/).
func TestEncodeMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	m := sharedTestModel(t)
	golden, _, _ := readGolden(t)
	texts := make([]string, 0, 120)
	for _, g := range golden[:120] {
		texts = append(texts, g.Text)
	}
	ctx := context.Background()
	rss := make([]int64, 0, 10)
	for round := 0; round < 10; round++ {
		_, err := m.Encode(ctx, texts, 32)
		require.NoError(t, err)
		runtime.GC()
		rss = append(rss, residentBytes(t))
	}
	// After warm-up (allocator pools, OpenMP), growth must stay small.
	growth := rss[len(rss)-1] - rss[2]
	t.Logf("RSS after rounds: %v MiB", mib(rss))
	assert.Less(t, growth, int64(64<<20), "RSS grew by %d MiB over 8 rounds", growth>>20)
	assert.Zero(t, torch.Leaked(), "tensors were freed by the GC instead of Close")
}

func mib(xs []int64) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = x >> 20
	}
	return out
}

func residentBytes(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	var size, res int64
	_, err = fmt.Sscan(string(b), &size, &res)
	require.NoError(t, err)
	return res * int64(os.Getpagesize())
}

// TestEncodeBF16 runs Encode under bfloat16 autocast: the vectors must
// change (autocast applied on every batch, not only the first) and stay
// close to sentence-transformers' fp32 ones.
func TestEncodeBF16(t *testing.T) {
	m, err := Load(context.Background(), modelDir(t), Options{BF16: true})
	require.NoError(t, err)
	defer m.Close()
	golden, want, _ := readGolden(t)
	var texts []string
	var ref [][]float32
	for i := 0; i < len(golden); i += 11 {
		texts = append(texts, golden[i].Text)
		ref = append(ref, want[i])
	}
	got, err := m.Encode(context.Background(), texts, 8)
	require.NoError(t, err)
	worst := 1.0
	changed := 0
	for i := range got {
		c := vecmath.Cosine(got[i], ref[i])
		worst = math.Min(worst, c)
		if c < 0.999999 {
			changed++
		}
	}
	assert.GreaterOrEqual(t, worst, 0.99, "bf16 worst cosine to ST fp32")
	assert.Greater(t, changed, len(got)/2, "most vectors should show bf16 rounding")
	// Every batch of 8 runs under autocast, the last as much as the first.
	assert.Less(t, vecmath.Cosine(got[len(got)-1], ref[len(ref)-1]), 0.999999)
}
