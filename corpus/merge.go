package corpus

import "fmt"

// Append is what `embtune index --append` writes over an existing index
// file: the chunks of x, then those of old whose ids x lacks (documents the
// new corpus does not have), in their order. Without --append an index file
// is the corpus alone, as a store is. old must hold the same model's
// vectors at the same dimension.
func Append(old, x *Index) (*Index, error) {
	if old.Info.ModelFingerprint != x.Info.ModelFingerprint {
		return nil, fmt.Errorf("index: --append: the index file holds embeddings of another model (%s) than %s", old.Info.Model, x.Info.Model)
	}
	if old.Info.Dim != x.Info.Dim {
		return nil, fmt.Errorf("index: --append: the index file holds %d-dimensional embeddings, the model gives %d", old.Info.Dim, x.Info.Dim)
	}
	have := make(map[string]bool, len(x.Chunks))
	docs := map[string]bool{}
	for _, c := range x.Chunks {
		have[c.ID] = true
		docs[c.Doc] = true
	}
	chunks := append([]Chunk(nil), x.Chunks...)
	vecs := make([][]float32, 0, len(x.Chunks)+len(old.Chunks))
	for i := range x.Chunks {
		vecs = append(vecs, x.Vector(i))
	}
	for i, c := range old.Chunks {
		if have[c.ID] {
			continue
		}
		chunks = append(chunks, c)
		vecs = append(vecs, old.Vector(i))
		docs[c.Doc] = true
	}
	info := x.Info
	info.Documents = len(docs)
	return FromVectors(info, chunks, vecs)
}
