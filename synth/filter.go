package synth

import (
	"fmt"
	"strings"
)

// Pair is one generated training pair as written to the output: the
// question, its chunk's text, the chunk id and the model that wrote it.
type Pair struct {
	Anchor   string `json:"anchor"`
	Positive string `json:"positive"`
	Chunk    string `json:"chunk"`
	Model    string `json:"model"`
}

// Pairs lists the questions of st's done chunks, in chunk order and, within a
// chunk, in the order the model wrote them.
func Pairs(chunks []Chunk, st *State) []Pair {
	var out []Pair
	for _, c := range chunks {
		o, ok := st.Outcome(c.ID)
		if !ok || o.Skipped {
			continue
		}
		for _, q := range o.Questions {
			out = append(out, Pair{Anchor: q, Positive: c.Text, Chunk: c.ID, Model: o.Model})
		}
	}
	return out
}

// RoundTrip keeps the questions whose own chunk ranks in the top k of the
// corpus by cosine similarity: the question is answered by its chunk, as
// far as the base model can tell. questions and chunks are L2-normalised
// vectors; own[i] is question i's chunk (an index into chunks). A chunk
// whose score ties the k-th best counts as within the top k.
func RoundTrip(questions [][]float32, own []int, chunks [][]float32, k int) ([]bool, error) {
	if len(own) != len(questions) {
		return nil, fmt.Errorf("synth: %d questions but %d chunk indexes", len(questions), len(own))
	}
	if k < 1 {
		return nil, fmt.Errorf("synth: --filter-top-k must be at least 1, got %d", k)
	}
	keep := make([]bool, len(questions))
	for i, q := range questions {
		if own[i] < 0 || own[i] >= len(chunks) {
			return nil, fmt.Errorf("synth: question %d names chunk %d of %d", i, own[i], len(chunks))
		}
		mine := dot(q, chunks[own[i]])
		better := 0
		for j, c := range chunks {
			if j != own[i] && dot(q, c) > mine {
				better++
				if better >= k {
					break
				}
			}
		}
		keep[i] = better < k
	}
	return keep, nil
}

// NearDuplicates marks for removal each question that is, after one already
// kept, the same text up to case, spacing and punctuation, or whose cosine
// similarity to a kept one is at least threshold (threshold > 1 turns the
// embedding test off). vecs are L2-normalised; questions are visited in
// order, so the first of a group stays.
func NearDuplicates(texts []string, vecs [][]float32, threshold float32) ([]bool, error) {
	if vecs != nil && len(vecs) != len(texts) {
		return nil, fmt.Errorf("synth: %d questions but %d vectors", len(texts), len(vecs))
	}
	keep := make([]bool, len(texts))
	seen := map[string]bool{}
	var kept []int
	for i, t := range texts {
		k := normalise(t)
		if seen[k] {
			continue
		}
		dup := false
		if vecs != nil && threshold <= 1 {
			for _, j := range kept {
				if dot(vecs[i], vecs[j]) >= threshold {
					dup = true
					break
				}
			}
		}
		if dup {
			continue
		}
		seen[k] = true
		keep[i] = true
		kept = append(kept, i)
	}
	return keep, nil
}

// normalise folds case and drops everything but letters and digits.
func normalise(s string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	}) {
		b.WriteString(w)
		b.WriteByte(' ')
	}
	return b.String()
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// FilterStats reports what each filter step removed.
type FilterStats struct {
	Generated  int `json:"generated"`
	RoundTrip  int `json:"removed_round_trip"`
	Duplicates int `json:"removed_near_duplicates"`
	Kept       int `json:"kept"`
}

// Select returns the pairs whose keep is true.
func Select(p []Pair, keep []bool) []Pair {
	var out []Pair
	for i, k := range keep {
		if k {
			out = append(out, p[i])
		}
	}
	return out
}

// ChunkIndex maps chunk ids to their index in chunks.
func ChunkIndex(chunks []Chunk) map[string]int {
	m := make(map[string]int, len(chunks))
	for i, c := range chunks {
		m[c.ID] = i
	}
	return m
}
