package trainer

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLossSettingsRejected checks sentence-transformers' argument checks,
// plus the conflict between --symmetric and explicit directions.
func TestLossSettingsRejected(t *testing.T) {
	cases := map[string]struct {
		edit func(*HyperParameters)
		want string
	}{
		"unknown direction": {func(h *HyperParameters) { h.Directions = "query_to_doc,doc_to_answer" }, `unknown direction "doc_to_answer"`},
		"no query_to_doc":   {func(h *HyperParameters) { h.Directions = "doc_to_query" }, "must include query_to_doc"},
		"twice":             {func(h *HyperParameters) { h.Directions = "query_to_doc, query_to_doc" }, "listed twice"},
		"per_direction with q2q": {func(h *HyperParameters) {
			h.Directions, h.PartitionMode = "query_to_doc,query_to_query", "per_direction"
		}, "per_direction cannot take"},
		"unknown partition":       {func(h *HyperParameters) { h.PartitionMode = "separate" }, `unknown partition mode "separate"`},
		"unknown hardness":        {func(h *HyperParameters) { h.HardnessMode = "hardest" }, `unknown hardness mode "hardest"`},
		"negative strength":       {func(h *HyperParameters) { h.HardnessMode, h.HardnessStrength = "all_negatives", -1 }, "must not be negative"},
		"symmetric and direction": {func(h *HyperParameters) { h.Symmetric, h.Directions = true, "query_to_doc" }, "give one or the other"},
		"zero scale":              {func(h *HyperParameters) { h.Scale = 0 }, "scale must be positive"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := DefaultHyperParameters()
			c.edit(&h)
			err := h.Validate()
			if assert.Error(t, err) {
				assert.Contains(t, err.Error(), c.want)
			}
		})
	}
	h := DefaultHyperParameters()
	h.Directions = " query_to_doc , doc_to_doc,query_to_query "
	h.HardnessMode, h.HardnessStrength = "in_batch_negatives", 9
	assert.NoError(t, h.Validate())
	assert.Equal(t, []string{QueryToDoc, DocToDoc, QueryToQuery}, h.Loss().Directions)
}
