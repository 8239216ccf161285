package serve

import (
	"encoding/json"
	"net/http"

	"github.com/embtune/embtune/hf"
)

// tokenizeRequest is TEI's POST /tokenize: the texts, whether to keep the
// special tokens the post-processor adds (default true), and a prompt.
type tokenizeRequest struct {
	Inputs           json.RawMessage `json:"inputs"`
	AddSpecialTokens *bool           `json:"add_special_tokens"`
	PromptName       *string         `json:"prompt_name"`
}

// simpleToken is TEI's SimpleToken. embtune's tokenizer keeps no offsets,
// so start and stop are null, which TEI's schema allows.
type simpleToken struct {
	ID      int64   `json:"id"`
	Text    string  `json:"text"`
	Special bool    `json:"special"`
	Start   *uint64 `json:"start"`
	Stop    *uint64 `json:"stop"`
}

// handleTokenize is TEI's POST /tokenize: each input's tokens as the model
// sees them, the prompt (prompt_name, else the default prompt) included
// and, as in TEI, not truncated at max_seq_length.
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) error {
	body, err := s.begin(w, r)
	if err != nil {
		return err
	}
	m, err := s.core.Model()
	if err != nil {
		return err
	}
	var texts []string
	req := tokenizeRequest{}
	switch firstByte(body) {
	case '{':
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		if texts, err = decodeInputs(req.Inputs, "`inputs`", s.cfg.MaxInputs); err != nil {
			return err
		}
	default:
		return badRequest(`request body must be a JSON object {"inputs": "text" or ["text", ...]}`)
	}
	prompt, err := resolvePrompt(m, req.PromptName, hf.RoleDefault)
	if err != nil {
		return err
	}
	special := req.AddSpecialTokens == nil || *req.AddSpecialTokens
	text := m.Text()
	pre, total := text.Tokenizer.SpecialPrefix(), text.Tokenizer.SpecialTokens()
	out := make([][]simpleToken, len(texts))
	for i, t := range texts {
		ids, err := text.IDs(prompt + t)
		if err != nil {
			return badRequest("input %d: %v", i, err)
		}
		toks := make([]simpleToken, 0, len(ids))
		for j, id := range ids {
			isSpecial := j < pre || j >= len(ids)-(total-pre)
			if isSpecial && !special {
				continue
			}
			toks = append(toks, simpleToken{ID: id, Text: text.Tokenizer.TokenString(id), Special: isSpecial})
		}
		out[i] = toks
	}
	b, err := json.Marshal(out)
	if err != nil {
		return errorf(KindInternal, "%w", err)
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}
