package minilm

import (
	"errors"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// xlmRoberta is XLMRobertaModel (model_type "xlm-roberta": multilingual-e5,
// paraphrase-multilingual-*, bge-m3): BERT's weights and layers, with one
// token type and positions numbered as RoBERTa's
// create_position_ids_from_input_ids does: real tokens count from
// padding_idx+1 (padding_idx is pad_token_id), padding tokens get
// padding_idx. XLMRobertaForXxx checkpoints carry a "roberta." prefix.
//
// Its int8 form is BERT's (quantized.go), with these positions.
var xlmRoberta = &family{
	name:         "xlm-roberta",
	prefixes:     []string{"roberta."},
	validate:     validateXLMRoberta,
	shapes:       paramShapes,
	order:        paramOrder,
	layerPrefix:  "encoder.layer.",
	maxPositions: func(c hf.Config) int { return c.MaxPositionEmbeddings - *c.PadTokenID - 1 },
	source: func(c hf.Config, top head, cpu bool) string {
		return encoderSource(c, top, cpu, bertArch{pos: xlmRobertaPositions(c)})
	},
	quantized: func(m *Model, weights map[string]hf.RawTensor) (*torch.Module, error) {
		return m.buildQuantizedWith(weights, xlmRobertaPositions(m.Folder.Config))
	},
	paddingRows: func(c hf.Config) map[string]int64 {
		p := padRow(c, 1)
		return map[string]int64{"embeddings.word_embeddings.weight": p, "embeddings.position_embeddings.weight": p}
	},
}

// xlmRobertaPositions numbers positions as RoBERTa does, from the ids.
func xlmRobertaPositions(c hf.Config) bertPositions {
	return bertPositions{paddingIdx: *c.PadTokenID, fromIDs: true}
}

func validateXLMRoberta(c hf.Config) error {
	if err := validateBERT(c); err != nil {
		return err
	}
	switch {
	case c.PadTokenID == nil:
		return errors.New("pad_token_id is missing: XLM-RoBERTa's positions start after it")
	case *c.PadTokenID < 0 || *c.PadTokenID+2 > c.MaxPositionEmbeddings:
		return errors.New("pad_token_id must leave at least one position below max_position_embeddings")
	}
	return nil
}
