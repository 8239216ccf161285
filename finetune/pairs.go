package finetune

import (
	"context"
	"fmt"

	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/vecmath"
)

// PairCosine is a chosen pair's cosine similarity before and after.
type PairCosine struct {
	Query  string  `json:"query"`
	Answer string  `json:"answer"`
	Base   float64 `json:"base"`
	Tuned  float64 `json:"tuned"`
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
