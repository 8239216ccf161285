package trainer

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/embtune/embtune/dataset"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lookupEncoder embeds each text as the vector stored for it: queries and
// documents from separate tables, as a RoleEncoder.
type lookupEncoder struct{ queries, docs map[string][]float32 }

func (e lookupEncoder) Encode(ctx context.Context, texts []string, _ int) ([][]float32, error) {
	return nil, fmt.Errorf("use EncodeQueries or EncodeDocuments")
}

func lookup(table map[string][]float32, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, s := range texts {
		v, ok := table[s]
		if !ok {
			return nil, fmt.Errorf("no vector for %q", s)
		}
		out[i] = v
	}
	return out, nil
}

func (e lookupEncoder) EncodeQueries(_ context.Context, texts []string, _ int) ([][]float32, error) {
	return lookup(e.queries, texts)
}

func (e lookupEncoder) EncodeDocuments(_ context.Context, texts []string, _ int) ([][]float32, error) {
	return lookup(e.docs, texts)
}

// TestEvaluateQueriesGolden: on the embeddings InformationRetrievalEvaluator
// scored, the per-query values average to the evaluator's own metrics, and
// the metrics and per-dim metrics are EvaluateDims'.
func TestEvaluateQueriesGolden(t *testing.T) {
	for _, name := range []string{"debian-faq", "debian-chapter", "ties"} {
		g, q, c := loadIRGolden(t, name)
		// The ties task repeats corpus texts (with equal vectors): name each
		// row by its index instead.
		enc := lookupEncoder{queries: map[string][]float32{}, docs: map[string][]float32{}}
		task := dataset.IRTask{Relevant: g.Relevant}
		for i := range g.Queries {
			task.Queries = append(task.Queries, fmt.Sprintf("q%d", i))
			enc.queries[task.Queries[i]] = q[i]
		}
		for i := range g.Corpus {
			task.Corpus = append(task.Corpus, fmt.Sprintf("d%d", i))
			enc.docs[task.Corpus[i]] = c[i]
		}
		ev, err := EvaluateQueries(context.Background(), enc, task, []int{64})
		require.NoError(t, err)
		full, byDim, err := EvaluateDims(context.Background(), enc, task, []int{64})
		require.NoError(t, err)
		assert.Equal(t, full, ev.Metrics, name)
		assert.Equal(t, byDim, ev.ByDim, name)
		require.Len(t, ev.Queries, len(g.Queries))
		for _, k := range ev.Metrics.Keys() {
			sum := 0.0
			for _, r := range ev.Queries {
				sum += r.Metrics[k]
			}
			assert.InDelta(t, g.Metrics[k], sum/float64(len(ev.Queries)), 1e-6, "%s: %s", name, k)
		}
		for i, r := range ev.Queries {
			// accuracy@1 is 1 exactly when the first relevant document ranks first.
			assert.Equal(t, r.Metrics["accuracy@1"] == 1, r.Rank == 1, "%s: query %d", name, i)
			if r.Rank > 0 && r.Rank <= 10 {
				assert.InDelta(t, 1/float64(r.Rank), r.Metrics["mrr@10"], 1e-12, "%s: query %d", name, i)
			}
		}
	}
}

func TestEvaluateQueriesRanks(t *testing.T) {
	// Documents along the axes; each query leans towards the documents in
	// the order given, so its relevant document's rank is known.
	docs := []string{"d0", "d1", "d2", "d3"}
	enc := lookupEncoder{queries: map[string][]float32{
		"first":  {4, 3, 2, 1},
		"third":  {4, 3, 2, 1},
		"fourth": {1, 2, 3, 4},
	}, docs: map[string][]float32{"d0": {1, 0, 0, 0}, "d1": {0, 1, 0, 0}, "d2": {0, 0, 1, 0}, "d3": {0, 0, 0, 1}}}
	task := dataset.IRTask{Queries: []string{"first", "third", "fourth"}, Corpus: docs, Relevant: [][]int{{0}, {2}, {0}}}
	ev, err := EvaluateQueries(context.Background(), enc, task, nil)
	require.NoError(t, err)
	for i, want := range []int{1, 3, 4} {
		assert.Equal(t, want, ev.Queries[i].Rank, task.Queries[i])
		assert.InDelta(t, 1/math.Log2(float64(want+1)), ev.Queries[i].Metrics["ndcg@10"], 1e-15, task.Queries[i])
	}
}
