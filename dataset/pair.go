// Package dataset loads, checks and splits training pairs for fine-tuning a
// sentence-embedding model with MultipleNegativesRankingLoss, following the
// data conventions of sentence-transformers.
package dataset

// Pair is one training example: an anchor (query/question), its positive (answer) and optional hard negatives.
type Pair struct {
	Anchor    string   `json:"anchor"`
	Positive  string   `json:"positive"`
	Negatives []string `json:"negatives,omitempty"`
}

// equal reports whether two pairs have identical texts; a nil and an empty
// Negatives slice count as the same.
func (p Pair) equal(q Pair) bool {
	if p.Anchor != q.Anchor || p.Positive != q.Positive || len(p.Negatives) != len(q.Negatives) {
		return false
	}
	for i := range p.Negatives {
		if p.Negatives[i] != q.Negatives[i] {
			return false
		}
	}
	return true
}
