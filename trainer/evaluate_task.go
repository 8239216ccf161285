package trainer

import (
	"context"
	"fmt"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
)

// Evaluate embeds an IR task's queries and corpus with m (a local model, a
// server or an endpoint) and computes InformationRetrievalEvaluator's metrics.
func Evaluate(ctx context.Context, m embedding.Encoder, task dataset.IRTask) (IRMetrics, error) {
	return evaluateTask(ctx, m, task)
}

// evaluateTask embeds queries and corpus and computes the IR metrics.
func evaluateTask(ctx context.Context, m embedding.Encoder, task dataset.IRTask) (IRMetrics, error) {
	q, c, err := encodeTask(ctx, m, task)
	if err != nil {
		return nil, err
	}
	return EvaluateIR(q, c, task.Relevant, DefaultIRConfig())
}

// encodeTask embeds an IR task's queries and corpus with the query and
// document prompts, as InformationRetrievalEvaluator encodes them with
// encode_query and encode_document.
func encodeTask(ctx context.Context, m embedding.Encoder, task dataset.IRTask) (queries, corpus [][]float32, err error) {
	if queries, err = embedding.Queries(ctx, m, task.Queries, 0); err != nil {
		return nil, nil, fmt.Errorf("evaluate: queries: %w", err)
	}
	if corpus, err = embedding.Documents(ctx, m, task.Corpus, 0); err != nil {
		return nil, nil, fmt.Errorf("evaluate: corpus: %w", err)
	}
	return queries, corpus, nil
}
