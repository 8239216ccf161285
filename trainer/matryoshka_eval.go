package trainer

import (
	"context"
	"fmt"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
)

// EvaluateDims embeds the task once and computes the metrics at the full
// dimension and at each of dims (each cut and re-normalised), as
// InformationRetrievalEvaluator does with truncate_dim.
func EvaluateDims(ctx context.Context, m embedding.Encoder, task dataset.IRTask, dims []int) (IRMetrics, []IRMetrics, error) {
	q, c, err := encodeTask(ctx, m, task)
	if err != nil {
		return nil, nil, err
	}
	full, err := EvaluateIR(q, c, task.Relevant, DefaultIRConfig())
	if err != nil {
		return nil, nil, err
	}
	var byDim []IRMetrics
	for _, d := range dims {
		tq, err := embedding.TruncateVectors(q, d)
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate: %w", err)
		}
		tc, err := embedding.TruncateVectors(c, d)
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate: %w", err)
		}
		r, err := EvaluateIR(tq, tc, task.Relevant, DefaultIRConfig())
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate at dim %d: %w", d, err)
		}
		byDim = append(byDim, r)
	}
	return full, byDim, nil
}
