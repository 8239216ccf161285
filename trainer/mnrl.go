package trainer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/embtune/embtune/torch"
)

// The directions of sentence-transformers' MultipleNegativesRankingLoss, in
// the order its joint softmax concatenates them.
const (
	QueryToDoc   = "query_to_doc"
	QueryToQuery = "query_to_query"
	DocToQuery   = "doc_to_query"
	DocToDoc     = "doc_to_doc"
)

var allDirections = []string{QueryToDoc, QueryToQuery, DocToQuery, DocToDoc}

// MultipleNegativesRankingLoss mirrors sentence-transformers 6.2's
// losses.MultipleNegativesRankingLoss. For anchors q (B×H) and documents
// d = [positives; hard negatives] (B·(1+n)×H), with cos the cosine matrix:
//
//	query_to_doc    cos(q, d)·Scale      (always; holds each anchor's positive)
//	query_to_query  cos(q, q)·Scale      without q_i → q_i
//	doc_to_query    cos(d⁺, q)·Scale     each positive against every anchor
//	doc_to_doc      cos(d⁺, d)·Scale     without the documents of the same pair
//	loss = mean_i( log Z_i − Scale·cos(q_i, d⁺_i) )
//
// With PartitionMode "joint" Z_i sums over every selected direction's row i
// (one softmax); with "per_direction" log Z_i is the mean of each direction's
// log-sum-exp. The defaults, query_to_doc alone, are cross_entropy(cos(q,
// d)·Scale, arange(B)): the classic loss. query_to_doc + doc_to_query
// per_direction is MultipleNegativesSymmetricRankingLoss; all four joint is
// GTE's improved contrastive loss.
//
// HardnessMode adds HardnessStrength·cos (without gradient) to negative
// logits inside the softmax, so harder negatives weigh more: to the in-batch
// negatives ("in_batch_negatives", Lan et al. 2025 use 9), to the explicit
// hard negatives ("hard_negatives", EmbeddingGemma uses 5) or to both
// ("all_negatives"). The positive is never penalised.
type MultipleNegativesRankingLoss struct {
	Scale            float64
	Directions       []string // nil: query_to_doc alone
	PartitionMode    string   // "" or "joint", or "per_direction"
	HardnessMode     string   // "" (off), "in_batch_negatives", "hard_negatives" or "all_negatives"
	HardnessStrength float64
}

// Validate applies sentence-transformers' checks.
func (l MultipleNegativesRankingLoss) Validate() error {
	if !(l.Scale > 0) || math.IsInf(l.Scale, 0) {
		return errors.New("scale must be positive")
	}
	seen := map[string]bool{}
	for _, d := range l.Directions {
		if !slices.Contains(allDirections, d) {
			return fmt.Errorf("unknown direction %q (want %s)", d, strings.Join(allDirections, ", "))
		}
		if seen[d] {
			return fmt.Errorf("direction %q is listed twice", d)
		}
		seen[d] = true
	}
	if len(l.Directions) > 0 && !seen[QueryToDoc] {
		return errors.New("directions must include query_to_doc: it holds the positive pair")
	}
	switch l.PartitionMode {
	case "", "joint":
	case "per_direction":
		if seen[QueryToQuery] || seen[DocToDoc] {
			return errors.New("partition mode per_direction cannot take query_to_query or doc_to_doc: " +
				"their candidates never include the positive (use joint)")
		}
	default:
		return fmt.Errorf("unknown partition mode %q (want joint or per_direction)", l.PartitionMode)
	}
	switch l.HardnessMode {
	case "", "in_batch_negatives", "hard_negatives", "all_negatives":
	default:
		return fmt.Errorf("unknown hardness mode %q (want in_batch_negatives, hard_negatives or all_negatives)", l.HardnessMode)
	}
	if !(l.HardnessStrength >= 0) || math.IsInf(l.HardnessStrength, 0) {
		return errors.New("hardness strength must not be negative")
	}
	return nil
}

func (l MultipleNegativesRankingLoss) has(d string) bool {
	return d == QueryToDoc || slices.Contains(l.Directions, d)
}

// source is the loss as a TorchScript forward(q, d) with the settings baked in.
func (l MultipleNegativesRankingLoss) source() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	scale := torch.ScriptFloat(l.Scale)
	w("def unit(self, x: Tensor) -> Tensor:")
	w("    return x / torch.clamp(x.pow(2).sum(1, keepdim=True).sqrt(), min=1e-12)")
	w("")
	w("def forward(self, q: Tensor, d: Tensor) -> Tensor:")
	w("    b = q.size(0)")
	w("    k = d.size(0) // b")
	w("    q = self.unit(q)")
	w("    d = self.unit(d)")
	w("    pos = d.narrow(0, 0, b)")
	w("    eye = torch.eye(b, device=q.device) > 0.5")
	w("    own = eye.repeat([1, k])")
	w("    qd = torch.mm(q, d.t())")
	w("    positive = qd.narrow(1, 0, b).diagonal() * %s", scale)
	w("    scores = qd * %s", scale)
	if l.HardnessMode != "" && l.HardnessStrength > 0 {
		w("    penalty = qd.detach() * %s", torch.ScriptFloat(l.HardnessStrength))
		w("    hard = (torch.arange(k * b, device=q.device) >= b).unsqueeze(0)")
		switch l.HardnessMode {
		case "in_batch_negatives": // other pairs' positives and hard negatives
			w("    penalty = penalty.masked_fill(own, 0.0)")
		case "hard_negatives": // the anchor's own hard negatives only
			w("    penalty = penalty.masked_fill(torch.logical_and(own, hard).logical_not(), 0.0)")
		case "all_negatives": // everything but the positive
			w("    penalty = penalty.masked_fill(torch.logical_and(own, hard.logical_not()), 0.0)")
		}
		w("    scores = scores + penalty")
	}
	w("    parts = [scores]")
	if l.has(QueryToQuery) {
		w("    parts.append(torch.mm(q, q.t()).masked_fill(eye, float(\"-inf\")) * %s)", scale)
	}
	if l.has(DocToQuery) {
		w("    parts.append(torch.mm(pos, q.t()) * %s)", scale)
	}
	if l.has(DocToDoc) {
		w("    parts.append(torch.mm(pos, d.t()).masked_fill(own, float(\"-inf\")) * %s)", scale)
	}
	if l.PartitionMode == "per_direction" {
		w("    logz = torch.zeros_like(positive)")
		w("    for p in parts:")
		w("        logz = logz + torch.logsumexp(p, [1])")
		w("    logz = logz / float(len(parts))")
	} else {
		w("    logz = torch.logsumexp(torch.cat(parts, 1), [1])")
	}
	w("    return (logz - positive).mean()")
	return b.String()
}

// CompiledLoss is a MultipleNegativesRankingLoss compiled by libtorch.
// Compile, call and Close it on the model's worker.
type CompiledLoss struct {
	mod *torch.Module
}

// Compile validates the settings and compiles the loss.
func (l MultipleNegativesRankingLoss) Compile() (*CompiledLoss, error) {
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	return compileSource("MultipleNegativesRankingLoss", l.source())
}

func compileSource(name, src string) (*CompiledLoss, error) {
	mod, err := torch.NewModule(name)
	if err != nil {
		return nil, err
	}
	if err := mod.Define(src); err != nil {
		mod.Close()
		return nil, fmt.Errorf("compile loss: %w", err)
	}
	return &CompiledLoss{mod: mod}, nil
}

// Loss computes the loss from anchor embeddings [B, H] and document
// embeddings [k·B, H] (positives, then each hard-negative column). The
// returned scalar is kept in s.
func (c *CompiledLoss) Loss(s *torch.Scope, anchors, docs *torch.Tensor) (*torch.Tensor, error) {
	as, err := anchors.Shape()
	if err != nil {
		return nil, err
	}
	ds, err := docs.Shape()
	if err != nil {
		return nil, err
	}
	if len(as) != 2 || len(ds) != 2 || as[0] < 1 || as[1] != ds[1] || ds[0] < as[0] || ds[0]%as[0] != 0 {
		return nil, fmt.Errorf("mnrl: anchors %v and documents %v: want [B, H] and [k·B, H]", as, ds)
	}
	return s.Keep(c.mod.Forward(anchors, docs)), s.Err()
}

// Close frees the compiled module; it is safe on nil.
func (c *CompiledLoss) Close() {
	if c != nil {
		c.mod.Close()
	}
}
