package trainer

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const irGoldenDir = "../testdata/golden/evaluator"

type irGolden struct {
	Task      string             `json:"task"`
	STVersion string             `json:"st_version"`
	Dim       int                `json:"dim"`
	Queries   []string           `json:"queries"`
	Corpus    []string           `json:"corpus"`
	Relevant  [][]int            `json:"relevant"`
	Metrics   map[string]float64 `json:"metrics"`
}

func readF32Rows(t *testing.T, path string, rows, dim int) [][]float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, raw, rows*dim*4, "%s: want %d x %d float32", path, rows, dim)
	out := make([][]float32, rows)
	for i := range out {
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[(i*dim+j)*4:]))
		}
	}
	return out
}

func loadIRGolden(t *testing.T, task string) (irGolden, [][]float32, [][]float32) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(irGoldenDir, task+".json"))
	require.NoError(t, err)
	var g irGolden
	require.NoError(t, json.Unmarshal(raw, &g))
	require.Len(t, g.Relevant, len(g.Queries))
	q := readF32Rows(t, filepath.Join(irGoldenDir, task+".queries.f32"), len(g.Queries), g.Dim)
	c := readF32Rows(t, filepath.Join(irGoldenDir, task+".corpus.f32"), len(g.Corpus), g.Dim)
	return g, q, c
}

// TestEvaluateIRGolden runs EvaluateIR on the embeddings sentence-transformers'
// InformationRetrievalEvaluator scored (tools/golden/gen_evaluator.py) and
// compares every metric with what that evaluator reported.
func TestEvaluateIRGolden(t *testing.T) {
	for _, task := range []string{"debian-faq", "debian-chapter", "ties"} {
		t.Run(task, func(t *testing.T) {
			g, q, c := loadIRGolden(t, task)
			got, err := EvaluateIR(q, c, g.Relevant, DefaultIRConfig())
			require.NoError(t, err)
			require.ElementsMatch(t, keysOf(g.Metrics), got.Keys())
			maxDiff := 0.0
			for _, k := range got.Keys() {
				d := math.Abs(got[k] - g.Metrics[k])
				maxDiff = max(maxDiff, d)
				assert.InDelta(t, g.Metrics[k], got[k], 1e-6, "%s: %s", task, k)
			}
			t.Logf("%s (ST %s): %d queries x %d docs, %d metrics, max |Go - ST| = %.3g",
				task, g.STVersion, len(q), len(c), len(got), maxDiff)
		})
	}
}

func keysOf(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestEvaluateIRBadInputs(t *testing.T) {
	q := [][]float32{{1, 0}, {0, 1}}
	c := [][]float32{{1, 0}, {0, 1}, {1, 1}}
	rel := [][]int{{0}, {1}}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cfg := DefaultIRConfig()
	for _, tc := range []struct {
		name     string
		q, c     [][]float32
		rel      [][]int
		cfg      IRConfig
		contains string
	}{
		{"no queries", nil, c, nil, cfg, "no queries"},
		{"empty corpus", q, nil, rel, cfg, "empty corpus"},
		{"relevance count", q, c, rel[:1], cfg, "1 relevance lists for 2 queries"},
		{"zero dim", [][]float32{{}, {}}, [][]float32{{}}, rel, cfg, "zero-dimensional"},
		{"ragged query", [][]float32{{1, 0}, {1}}, c, rel, cfg, "query 1 has dimension 1, want 2"},
		{"ragged corpus", q, [][]float32{{1, 0}, {0, 1, 2}}, rel, cfg, "corpus 1 has dimension 3, want 2"},
		{"nan query", [][]float32{{1, 0}, {nan, 1}}, c, rel, cfg, "query 1 has a non-finite value"},
		{"inf corpus", q, [][]float32{{1, 0}, {0, 1}, {inf, 0}}, rel, cfg, "corpus 2 has a non-finite value"},
		{"no relevant", q, c, [][]int{{0}, {}}, cfg, "query 1 has no relevant documents"},
		{"nil relevant", q, c, [][]int{nil, {1}}, cfg, "query 0 has no relevant documents"},
		{"index too big", q, c, [][]int{{0}, {3}}, cfg, "relevant index 3 out of range [0,3)"},
		{"negative index", q, c, [][]int{{-1}, {1}}, cfg, "relevant index -1 out of range"},
		{"k zero", q, c, rel, IRConfig{MRRAtK: []int{0}}, "k=0"},
		{"k negative", q, c, rel, IRConfig{AccuracyAtK: []int{1}, MAPAtK: []int{-5}}, "k=-5"},
		{"no cut-offs", q, c, rel, IRConfig{}, "no cut-offs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := EvaluateIR(tc.q, tc.c, tc.rel, tc.cfg)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.Contains(t, err.Error(), tc.contains)
		})
	}
}

// TestEvaluateIRTiny checks the definitions on 2 queries x 3 documents:
//
//	q0 = (1,0): d0 1, d2 0.707, d1 0        relevant {2}    hits F T F
//	q1 = (0,1): d1 1, d2 0.707, d0 0        relevant {0,2}  hits F T T
func TestEvaluateIRTiny(t *testing.T) {
	q := [][]float32{{1, 0}, {0, 1}}
	c := [][]float32{{1, 0}, {0, 1}, {1, 1}}
	rel := [][]int{{2}, {2, 0, 2}} // the repeated 2 counts once, as in ST's sets
	cfg := IRConfig{
		AccuracyAtK:        []int{1, 2, 3},
		PrecisionRecallAtK: []int{1, 2, 3, 5},
		MRRAtK:             []int{1, 3},
		NDCGAtK:            []int{2, 3},
		MAPAtK:             []int{1, 3},
	}
	got, err := EvaluateIR(q, c, rel, cfg)
	require.NoError(t, err)
	l3 := 1 / math.Log2(3)
	want := IRMetrics{
		"accuracy@1": 0, "accuracy@2": 1, "accuracy@3": 1,
		"precision@1": 0, "precision@2": (0.5 + 0.5) / 2, "precision@3": (1.0/3 + 2.0/3) / 2,
		"precision@5": (1.0/5 + 2.0/5) / 2, // divided by k even beyond the corpus size
		"recall@1":    0, "recall@2": (1 + 0.5) / 2, "recall@3": 1, "recall@5": 1,
		"mrr@1": 0, "mrr@3": (0.5 + 0.5) / 2,
		"ndcg@2": (l3/1 + l3/(1+l3)) / 2,
		"ndcg@3": (l3/1 + (l3+0.5)/(1+l3)) / 2,
		"map@1":  0,
		"map@3":  (0.5/1 + (0.5+2.0/3)/2) / 2, // divided by min(k, len(relevant))
	}
	require.ElementsMatch(t, want.Keys(), got.Keys())
	for k, v := range want {
		assert.InDelta(t, v, got[k], 1e-12, k)
	}

	// More relevant documents than k: q0 = (1,0) ranks d0, d2, d1, all relevant.
	got, err = EvaluateIR(q[:1], c, [][]int{{0, 1, 2}}, IRConfig{
		PrecisionRecallAtK: []int{2}, NDCGAtK: []int{2}, MAPAtK: []int{2, 3},
	})
	require.NoError(t, err)
	assert.InDelta(t, 1.0, got["precision@2"], 1e-15)
	assert.InDelta(t, 2.0/3, got["recall@2"], 1e-15)
	assert.InDelta(t, 1.0, got["ndcg@2"], 1e-15) // ideal DCG over min(3, 2) documents
	assert.InDelta(t, 1.0, got["map@2"], 1e-15)  // (1/1 + 2/2) / min(2, 3)
	assert.InDelta(t, 1.0, got["map@3"], 1e-15)  // (1/1 + 2/2 + 3/3) / 3
}

func TestEvaluateIRTies(t *testing.T) {
	// d0, d1, d3 all normalize to (1,0): bit-equal scores, ranked by index.
	c := [][]float32{{2, 0}, {1, 0}, {0, 1}, {3, 0}}
	q := [][]float32{{5, 0}}
	cfg := IRConfig{AccuracyAtK: []int{1, 2}, MRRAtK: []int{10}}
	for _, tc := range []struct {
		rel       int
		acc1, mrr float64
	}{{0, 1, 1}, {1, 0, 0.5}, {3, 0, 1.0 / 3}, {2, 0, 0.25}} {
		got, err := EvaluateIR(q, c, [][]int{{tc.rel}}, cfg)
		require.NoError(t, err)
		assert.Equal(t, tc.acc1, got["accuracy@1"], "relevant d%d", tc.rel)
		assert.InDelta(t, tc.mrr, got["mrr@10"], 1e-15, "relevant d%d", tc.rel)
	}

	// Ties at the cut: 5 equal documents, top-2 keeps the two lowest indexes.
	c = [][]float32{{1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}}
	for rel, want := range []float64{1, 1, 0, 0, 0} {
		got, err := EvaluateIR(q, c, [][]int{{rel}}, IRConfig{AccuracyAtK: []int{2}})
		require.NoError(t, err)
		assert.Equal(t, want, got["accuracy@2"], "relevant d%d", rel)
	}

	// A zero vector scores 0 (normalized with ST's eps), ahead of a negative score.
	got, err := EvaluateIR([][]float32{{1, 0}}, [][]float32{{-1, 0}, {0, 0}}, [][]int{{1}}, IRConfig{MRRAtK: []int{10}})
	require.NoError(t, err)
	assert.Equal(t, 1.0, got["mrr@10"])
}

// irBruteRank ranks the whole corpus with a stable full sort, the reference
// for the chunked, parallel heap.
func irBruteRank(q, c [][]float32, topK int) [][]int {
	dim := len(q[0])
	qn, dn := make([]float64, dim), make([]float64, dim)
	out := make([][]int, len(q))
	for i := range q {
		irNormalize(qn, q[i])
		scores := make([]float32, len(c))
		for j := range c {
			irNormalize(dn, c[j])
			scores[j] = float32(irDot(qn, dn))
		}
		idx := make([]int, len(c))
		for j := range idx {
			idx[j] = j
		}
		sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
		out[i] = idx[:min(topK, len(idx))]
	}
	return out
}

func TestIRTopKMatchesFullSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Coarse vectors in 3 dims make exact ties common; the corpus spans
	// several normalization chunks.
	gen := func(n int) [][]float32 {
		out := make([][]float32, n)
		for i := range out {
			out[i] = []float32{float32(r.IntN(3) - 1), float32(r.IntN(3) - 1), float32(r.IntN(2))}
		}
		return out
	}
	q, c := gen(37), gen(2*irCorpusChunk+77)
	want := irBruteRank(q, c, 100)
	for _, procs := range []int{1, 3, runtime.GOMAXPROCS(0)} {
		old := runtime.GOMAXPROCS(procs)
		got := irTopK(q, c, 3, 100)
		runtime.GOMAXPROCS(old)
		require.Equal(t, want, got, "GOMAXPROCS=%d", procs)
	}
}

func TestIRDot2x2MatchesIRDot(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, dim := range []int{1, 2, 3, 7, 8, 383, 384} {
		v := make([][]float64, 4)
		for i := range v {
			v[i] = make([]float64, dim)
			for j := range v[i] {
				v[i][j] = r.NormFloat64()
			}
		}
		s00, s01, s10, s11 := irDot2x2(v[0], v[1], v[2], v[3])
		// Bit equality, not closeness: tied documents must stay tied.
		assert.Equal(t, irDot(v[0], v[2]), s00, "dim %d", dim)
		assert.Equal(t, irDot(v[0], v[3]), s01, "dim %d", dim)
		assert.Equal(t, irDot(v[1], v[2]), s10, "dim %d", dim)
		assert.Equal(t, irDot(v[1], v[3]), s11, "dim %d", dim)
	}
}

func TestIRMetricsKeys(t *testing.T) {
	m := IRMetrics{}
	for _, k := range []string{"map@100", "ndcg@10", "mrr@10", "recall@10", "recall@1", "precision@3", "accuracy@10", "accuracy@3", "loss", "accuracy@1"} {
		m[k] = 0.5
	}
	assert.Equal(t, []string{"accuracy@1", "accuracy@3", "accuracy@10", "precision@3", "recall@1", "recall@10",
		"mrr@10", "ndcg@10", "map@100", "loss"}, m.Keys())

	def := make([]string, 0, 15)
	for _, f := range []string{"accuracy", "precision", "recall"} {
		for _, k := range []string{"1", "3", "5", "10"} {
			def = append(def, f+"@"+k)
		}
	}
	def = append(def, "mrr@10", "ndcg@10", "map@100")
	got, err := EvaluateIR([][]float32{{1, 0}}, [][]float32{{1, 0}}, [][]int{{0}}, DefaultIRConfig())
	require.NoError(t, err)
	assert.Equal(t, def, got.Keys())
}

func randRows(r *rand.Rand, n, dim int) [][]float32 {
	flat := make([]float32, n*dim)
	for i := range flat {
		flat[i] = float32(r.NormFloat64())
	}
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return rows
}

func BenchmarkEvaluateIR(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	q, c := randRows(r, 1000, 384), randRows(r, 20000, 384)
	rel := make([][]int, len(q))
	for i := range rel {
		rel[i] = []int{r.IntN(len(c)), r.IntN(len(c))}
	}
	cfg := DefaultIRConfig()
	for b.Loop() {
		if _, err := EvaluateIR(q, c, rel, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(q))*float64(len(c))*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}
