package hf

import (
	"encoding/json"

	"fmt"
)

// parsePostProcessorJSON returns the special-token ids that the
// post-processor puts before and after a single sequence. Pair templates
// are not read: embtune encodes single texts, as sentence-transformers does.
func parsePostProcessorJSON(raw json.RawMessage, what string) (prefix, suffix []int64, err error) {
	if isNull(raw) {
		return nil, nil, nil
	}
	typ, err := typeOf(raw, what)
	if err != nil {
		return nil, nil, err
	}
	var p tjPostProcessor
	if err := decodeComponent(raw, what, typ, &p); err != nil {
		return nil, nil, err
	}
	switch typ {
	case "TemplateProcessing":
		seen := false
		for _, piece := range p.Single {
			switch {
			case piece.Sequence != nil:
				if seen || piece.Sequence.ID != "A" {
					return nil, nil, fmt.Errorf("%s: single template must hold sequence A once", what)
				}
				seen = true
			case piece.SpecialToken != nil:
				st, ok := p.SpecialTokens[piece.SpecialToken.ID]
				if !ok {
					return nil, nil, fmt.Errorf("%s: special token %q not defined", what, piece.SpecialToken.ID)
				}
				if seen {
					suffix = append(suffix, st.IDs...)
				} else {
					prefix = append(prefix, st.IDs...)
				}
			default:
				return nil, nil, fmt.Errorf("%s: unknown template piece", what)
			}
		}
		if !seen {
			return nil, nil, fmt.Errorf("%s: single template has no sequence", what)
		}
		return prefix, suffix, nil
	case "BertProcessing", "RobertaProcessing":
		cls, err := bertProcessingID(p.Cls)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s.cls: %w", what, typ, err)
		}
		sep, err := bertProcessingID(p.Sep)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s.sep: %w", what, typ, err)
		}
		return []int64{cls}, []int64{sep}, nil
	case "ByteLevel":
		// Only trims offsets: the ids are unchanged.
		return nil, nil, nil
	case "Sequence":
		var v struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, nil, err
		}
		for i, r := range v.Processors {
			pre, suf, err := parsePostProcessorJSON(r, fmt.Sprintf("%s.processors[%d]", what, i))
			if err != nil {
				return nil, nil, err
			}
			prefix = append(append([]int64(nil), pre...), prefix...)
			suffix = append(suffix, suf...)
		}
		return prefix, suffix, nil
	default:
		return nil, nil, fmt.Errorf("unsupported %s type %q", what, typ)
	}
}
