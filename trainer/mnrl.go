package trainer

import (
	"fmt"
	"math"

	"github.com/embtune/embtune/torch"
)

// MultipleNegativesRankingLoss mirrors sentence-transformers'
// losses.MultipleNegativesRankingLoss with its defaults: for anchors a (B×H)
// and documents d = [positives; hard negatives] (B·(1+n)×H),
//
//	scores = cos_sim(a, d) · Scale
//	loss   = cross_entropy(scores, arange(B))
//
// so each anchor's positive competes with every other document in the batch.
// With Symmetric it is MultipleNegativesSymmetricRankingLoss
// (directions query_to_doc and doc_to_query, partition "per_direction"):
// the mean of that loss and cross_entropy(cos_sim(positives, a) · Scale, arange(B)).
type MultipleNegativesRankingLoss struct {
	Scale     float64
	Symmetric bool
}

// Loss computes the loss from the embeddings. Temporaries go into s; the
// returned scalar is in s too.
func (l MultipleNegativesRankingLoss) Loss(s *torch.Scope, anchors, docs *torch.Tensor) (*torch.Tensor, error) {
	as, err := anchors.Shape()
	if err != nil {
		return nil, err
	}
	ds, err := docs.Shape()
	if err != nil {
		return nil, err
	}
	if len(as) != 2 || len(ds) != 2 || as[1] != ds[1] || ds[0] < as[0] || ds[0]%as[0] != 0 {
		return nil, fmt.Errorf("mnrl: anchors %v and documents %v: want [B, H] and [k·B, H]", as, ds)
	}
	b := as[0]
	dev, err := anchors.Device()
	if err != nil {
		return nil, err
	}
	labels := s.Keep(torch.Arange(b, dev))
	sim := s.Keep(anchors.CosSim(docs))
	scores := s.Keep(sim.MulScalar(l.Scale))
	if err := s.Err(); err != nil {
		return nil, err
	}
	forward := s.Keep(torch.CrossEntropy(scores, labels))
	if err := s.Err(); err != nil || !l.Symmetric {
		return forward, err
	}
	positive := s.Keep(scores.Narrow(1, 0, b))
	if err := s.Err(); err != nil {
		return nil, err
	}
	docToQuery := s.Keep(positive.T())
	if err := s.Err(); err != nil {
		return nil, err
	}
	backward := s.Keep(torch.CrossEntropy(docToQuery, labels))
	if err := s.Err(); err != nil {
		return nil, err
	}
	sum := s.Keep(forward.Add(backward))
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s.Keep(sum.MulScalar(0.5)), s.Err()
}

// Cosine similarity of two embeddings, in float64 (0 when either is zero).
// Normalised models give unit vectors, but a folder without a Normalize
// module gives raw mean-pooled ones.
func Cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
