package trainer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/embtune/embtune/torch"
)

// MatryoshkaLoss mirrors sentence-transformers 6.2's losses.MatryoshkaLoss
// around MultipleNegativesRankingLoss: the loss is Σ_d w_d · MNRL(q[:, :d],
// D[:, :d]), each truncated embedding L2-normalised (its shrink()), so that
// the first d dimensions of the tuned model's vectors are an embedding on
// their own. Dims run in descending order as ST sorts them (the weights
// follow their dims); the weights default to 1 each, as ST's. ST's
// n_dims_per_step (a random subset of dims each step) is not offered: every
// dim trains every step, its default.
type MatryoshkaLoss struct {
	Loss    MultipleNegativesRankingLoss
	Dims    []int
	Weights []float64 // nil: 1 for every dim
}

// ParseMatryoshka reads comma-separated dims and weights ("384,256,128" and
// "1,1,0.5"); empty weights mean 1 each. The dims come back sorted in
// descending order with their weights, as MatryoshkaLoss sorts them. A
// JSON list ("[384, 256]", as the SageMaker Python SDK sends a list
// hyperparameter) reads the same.
func ParseMatryoshka(dims, weights string) ([]int, []float64, error) {
	dims, weights = trimList(dims), trimList(weights)
	var ds []int
	for _, f := range splitList(dims) {
		d, err := strconv.Atoi(f)
		if err != nil {
			return nil, nil, fmt.Errorf("matryoshka dims: %q is not an integer", f)
		}
		if d <= 0 {
			return nil, nil, fmt.Errorf("matryoshka dims: %d: every dim must be > 0", d)
		}
		ds = append(ds, d)
	}
	var ws []float64
	for _, f := range splitList(weights) {
		w, err := strconv.ParseFloat(f, 64)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, nil, fmt.Errorf("matryoshka weights: %q is not a finite number", f)
		}
		ws = append(ws, w)
	}
	if len(ds) == 0 {
		if len(ws) > 0 {
			return nil, nil, errors.New("matryoshka weights need matryoshka dims")
		}
		return nil, nil, nil
	}
	if ws == nil {
		ws = make([]float64, len(ds))
		for i := range ws {
			ws[i] = 1
		}
	}
	if len(ws) != len(ds) {
		return nil, nil, fmt.Errorf("matryoshka weights: %d weights for %d dims: give one per dim", len(ws), len(ds))
	}
	idx := make([]int, len(ds))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ds[idx[a]] > ds[idx[b]] })
	sd, sw := make([]int, len(ds)), make([]float64, len(ds))
	for i, j := range idx {
		sd[i], sw[i] = ds[j], ws[j]
	}
	return sd, sw, nil
}

func trimList(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Validate checks the inner loss and the dims against the model's
// embedding dimension modelDim (0: unknown, not checked).
func (l MatryoshkaLoss) Validate(modelDim int) error {
	if err := l.Loss.Validate(); err != nil {
		return err
	}
	if len(l.Dims) == 0 {
		return errors.New("matryoshka: no dims")
	}
	if l.Weights != nil && len(l.Weights) != len(l.Dims) {
		return fmt.Errorf("matryoshka: %d weights for %d dims", len(l.Weights), len(l.Dims))
	}
	for _, d := range l.Dims {
		if d <= 0 {
			return fmt.Errorf("matryoshka: dim %d must be > 0", d)
		}
		if modelDim > 0 && d > modelDim {
			return fmt.Errorf("matryoshka dim %d is larger than the model's embedding dimension %d", d, modelDim)
		}
	}
	return nil
}

func (l MatryoshkaLoss) weight(i int) float64 {
	if l.Weights == nil {
		return 1
	}
	return l.Weights[i]
}

// source renames MNRL's forward to mnrl and sums it over the truncations.
// MNRL normalises its inputs itself, so shrink()'s normalisation is that
// one: normalising twice gives the same vectors.
func (l MatryoshkaLoss) source() string {
	inner := strings.Replace(l.Loss.source(), "def forward(", "def mnrl(", 1)
	var b strings.Builder
	b.WriteString(inner)
	b.WriteString("\ndef forward(self, q: Tensor, d: Tensor) -> Tensor:\n")
	b.WriteString("    loss = torch.zeros([], device=q.device)\n")
	for i, dim := range l.Dims {
		fmt.Fprintf(&b, "    loss = loss + %s * self.mnrl(q.narrow(1, 0, %d), d.narrow(1, 0, %d))\n",
			torch.ScriptFloat(l.weight(i)), dim, dim)
	}
	b.WriteString("    return loss\n")
	return b.String()
}

// Compile validates the settings (not against a model: see Validate) and
// compiles the loss.
func (l MatryoshkaLoss) Compile() (*CompiledLoss, error) {
	if err := l.Validate(0); err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	return compileSource("MatryoshkaLoss", l.source())
}
