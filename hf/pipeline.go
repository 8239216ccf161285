package hf

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// pipeline is the general form of a tokenizer.json, in HF's order: added
// tokens that are not normalized are cut out of the raw text, the rest is
// normalized, normalized added tokens are cut out of that, the rest is
// pre-tokenized and each piece goes through the model. The post-processor's
// special tokens live in Tokenizer.prefixIDs/suffixIDs.
type pipeline struct {
	normalizer normalizer   // nil: none
	pre        preTokenizer // nil: none
	model      model
	raw        addedSet // added tokens matched in the raw text
	normed     addedSet // added tokens matched in the normalized text
}

// piece is one split of the text on its way through the pipeline. first
// tells whether it begins the input (Metaspace's prepend_scheme "first").
type piece struct {
	text  string
	first bool
}

type normalizer interface {
	normalize(s string) string
}

type preTokenizer interface {
	// split appends the pieces p splits into.
	split(dst []piece, p piece) []piece
}

type model interface {
	appendIDs(ids []int64, word string) ([]int64, error)
}

// isClassicBert tells whether f is the BERT WordPiece tokenizer that the
// fused path of Tokenizer reads exactly.
func isClassicBert(f *tjFile) bool {
	typ := func(raw json.RawMessage) string {
		var t tjType
		if len(raw) == 0 || json.Unmarshal(raw, &t) != nil {
			return ""
		}
		return t.Type
	}
	if typ(f.Normalizer) != "BertNormalizer" || typ(f.PreTokenizer) != "BertPreTokenizer" || typ(f.Model) != "WordPiece" {
		return false
	}
	switch typ(f.PostProcessor) {
	case "BertProcessing", "RobertaProcessing", "TemplateProcessing":
	default:
		return false
	}
	for _, a := range f.AddedTokens {
		if a.Normalized || a.SingleWord || a.LStrip || a.RStrip || a.Content == "" {
			return false
		}
	}
	return true
}

func parsePipeline(f *tjFile) (*Tokenizer, error) {
	t := &Tokenizer{pipe: &pipeline{}}
	p := t.pipe
	var err error
	if p.normalizer, err = parseNormalizerJSON(f.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if p.pre, err = parsePreTokenizerJSON(f.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	var vocab map[string]int64
	if p.model, vocab, err = parseModelJSON(f.Model); err != nil {
		return nil, err
	}
	for tok, id := range vocab {
		t.setToken(id, tok)
	}
	if err := p.parseAdded(t, f.AddedTokens); err != nil {
		return nil, err
	}
	if t.prefixIDs, t.suffixIDs, err = parsePostProcessorJSON(f.PostProcessor, "post_processor"); err != nil {
		return nil, err
	}
	for _, id := range slices.Concat(t.prefixIDs, t.suffixIDs) {
		if id < 0 || id >= int64(len(t.idToToken)) || t.idToToken[id] == "" {
			return nil, fmt.Errorf("post_processor: id %d is not in the vocabulary", id)
		}
	}
	switch {
	case f.Padding != nil:
		t.padID = f.Padding.PadID
	default:
		for _, name := range []string{"[PAD]", "<pad>", "<|endoftext|>"} {
			if id, ok := vocab[name]; ok {
				t.padID = id
				break
			}
		}
	}
	t.scratchers.New = func() any { return new(tokScratch) }
	return t, nil
}

// HasLowercase tells whether the tokenizer's normalizer holds a Lowercase
// step (sentence-transformers then adds none for do_lower_case).
func (t *Tokenizer) HasLowercase() bool {
	if t.pipe == nil {
		return false
	}
	var has func(n normalizer) bool
	has = func(n normalizer) bool {
		switch n := n.(type) {
		case lowercaseNormalizer:
			return true
		case sequenceNormalizer:
			for _, m := range n {
				if has(m) {
					return true
				}
			}
		}
		return false
	}
	return has(t.pipe.normalizer)
}

// appendIDs appends the ids of text without the post-processor's tokens.
func (p *pipeline) appendIDs(ids []int64, text string) ([]int64, error) {
	var err error
	var pieces []piece
	for _, seg := range p.raw.split(nil, text, 0) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		normed := seg.text
		if p.normalizer != nil {
			normed = p.normalizer.normalize(normed)
		}
		for _, sub := range p.normed.split(nil, normed, 0) {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				continue
			}
			if sub.text == "" {
				continue
			}
			pieces = append(pieces[:0], piece{text: sub.text, first: seg.start == 0 && sub.start == 0})
			if p.pre != nil {
				pieces = p.pre.split(nil, pieces[0])
			}
			for _, pc := range pieces {
				if pc.text == "" {
					continue
				}
				if ids, err = p.model.appendIDs(ids, pc.text); err != nil {
					return nil, err
				}
			}
		}
	}
	return ids, nil
}

// addedSet matches added tokens leftmost-longest, as HF's aho-corasick
// automaton does, and applies their single_word, lstrip and rstrip rules.
type addedSet struct {
	byFirst [256][]addedEntry // longest first
}

type addedEntry struct {
	pattern    string
	id         int64
	singleWord bool
	lstrip     bool
	rstrip     bool
}

type addedMatch struct {
	text  string
	start int   // byte offset in the string that was split
	id    int64 // -1: not an added token
}

func (a *addedSet) add(e addedEntry) {
	if e.pattern == "" {
		return
	}
	b := e.pattern[0]
	// A later duplicate pattern wins, as in HF's refresh of its tries.
	a.byFirst[b] = slices.DeleteFunc(a.byFirst[b], func(x addedEntry) bool { return x.pattern == e.pattern })
	a.byFirst[b] = append(a.byFirst[b], e)
	slices.SortStableFunc(a.byFirst[b], func(x, y addedEntry) int { return len(y.pattern) - len(x.pattern) })
}

func (a *addedSet) empty() bool {
	for i := range a.byFirst {
		if len(a.byFirst[i]) > 0 {
			return false
		}
	}
	return true
}

// split mirrors AddedVocabulary::find_matches.
func (a *addedSet) split(dst []addedMatch, s string, _ int) []addedMatch {
	if s == "" {
		return append(dst, addedMatch{text: "", id: -1})
	}
	startOffset := 0
	for i := 0; i < len(s); {
		var hit *addedEntry
		for k := range a.byFirst[s[i]] {
			e := &a.byFirst[s[i]][k]
			if strings.HasPrefix(s[i:], e.pattern) {
				hit = e
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		start, stop := i, i+len(hit.pattern)
		i = stop
		if hit.singleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if hit.lstrip {
			newStart := start
			for newStart > 0 {
				r, size := utf8.DecodeLastRuneInString(s[:newStart])
				if !isRustWhitespace(r) {
					break
				}
				newStart -= size
			}
			start = max(newStart, startOffset)
		}
		if hit.rstrip {
			for stop < len(s) {
				r, size := utf8.DecodeRuneInString(s[stop:])
				if !isRustWhitespace(r) {
					break
				}
				stop += size
			}
		}
		if startOffset < start {
			dst = append(dst, addedMatch{text: s[startOffset:start], start: startOffset, id: -1})
		}
		dst = append(dst, addedMatch{text: s[start:stop], start: start, id: hit.id})
		startOffset = stop
	}
	if startOffset != len(s) {
		dst = append(dst, addedMatch{text: s[startOffset:], start: startOffset, id: -1})
	}
	return dst
}

// isWordChar is HF's test for single_word tokens: Rust's
// char::is_alphanumeric or '_'.
func isWordChar(r rune) bool { return r == '_' || isRustAlphanumeric(r) }

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordChar(r)
}

func (p *pipeline) parseAdded(t *Tokenizer, list []tjAddedToken) error {
	for _, a := range list {
		if a.ID < 0 {
			return fmt.Errorf("added token %q: negative id %d", a.Content, a.ID)
		}
		t.setToken(a.ID, a.Content)
		e := addedEntry{pattern: a.Content, id: a.ID, singleWord: a.SingleWord, lstrip: a.LStrip, rstrip: a.RStrip}
		if !a.Normalized {
			p.raw.add(e)
			continue
		}
		if p.normalizer != nil {
			e.pattern = p.normalizer.normalize(e.pattern)
		}
		p.normed.add(e)
	}
	return nil
}

// typeOf reads the "type" tag of a component; what names the section.
func typeOf(raw json.RawMessage, what string) (string, error) {
	var t struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("malformed %s: %w", what, err)
	}
	if t.Type == nil {
		return "", fmt.Errorf("%s has no type", what)
	}
	return *t.Type, nil
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// decodeComponent unmarshals a component into v, naming it on error.
func decodeComponent(raw json.RawMessage, what, typ string, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("malformed %s %s: %w", what, typ, err)
	}
	return nil
}
