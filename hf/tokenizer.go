package hf

//go:generate ../third_party/golden-venv/bin/python gen_unicode_tables.py unicode_tables.go

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrInvalidUTF8 is returned (wrapped) for text that is not valid UTF-8.
// Hugging Face only ever sees valid strings, so rather than guess how bad
// bytes would have been replaced we refuse them.
var ErrInvalidUTF8 = errors.New("text is not valid UTF-8")

// Tokenizer is a tokenizer read from a Hugging Face tokenizer.json. It
// reproduces the tokenizers library's pipeline: added tokens, normalizer,
// pre-tokenizer, model (WordPiece, BPE or Unigram) and the special tokens of
// the post-processor (docs/tokenizers.md lists every component). It is
// read-only after loading and safe for concurrent use.
type Tokenizer struct {
	wordPiece
	bertNormalizer
	idToToken  []string
	padID      int64
	prefixIDs  []int64           // post-processor tokens before the sequence ([CLS])
	suffixIDs  []int64           // post-processor tokens after the sequence ([SEP])
	added      [256][]addedToken // by first byte, longest first
	scratchers sync.Pool
	// pipe is set for every tokenizer.json other than the classic BERT
	// one (BertNormalizer, BertPreTokenizer, WordPiece, plain added
	// tokens), which keeps its fused fast path above.
	pipe *pipeline
}

// wordPiece is the WordPiece model. vocab holds word-initial pieces, cont
// the continuation pieces keyed without the "##" prefix so lookups need no
// string building.
type wordPiece struct {
	vocab    map[string]int64
	cont     map[string]int64
	maxVocab int // longest key in vocab, in bytes
	maxCont  int // longest key in cont, in bytes
	unkID    int64
	maxChars int
}

// bertNormalizer is HF's BertNormalizer.
type bertNormalizer struct {
	cleanText bool
	chinese   bool
	stripAcc  bool
	lowercase bool
}

type addedToken struct {
	content string
	id      int64
}

type tokScratch struct{ a, b, c []byte }

// JSON shapes of the parts of tokenizer.json we read.
type tjFile struct {
	AddedTokens   []tjAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	Model         json.RawMessage `json:"model"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Padding       *struct {
		PadID int64 `json:"pad_id"`
	} `json:"padding"`
}

type tjAddedToken struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type tjType struct {
	Type string `json:"type"`
}

// Pointers tell "absent" from false so HF's defaults can apply.
type tjBertNormalizer struct {
	CleanText          *bool `json:"clean_text"`
	HandleChineseChars *bool `json:"handle_chinese_chars"`
	StripAccents       *bool `json:"strip_accents"`
	Lowercase          *bool `json:"lowercase"`
}

type tjWordPiece struct {
	Type                    string           `json:"type"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	MaxInputCharsPerWord    *int             `json:"max_input_chars_per_word"`
	Vocab                   map[string]int64 `json:"vocab"`
}

type tjTemplatePiece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

type tjPostProcessor struct {
	Type          string            `json:"type"`
	Single        []tjTemplatePiece `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int64 `json:"ids"`
	} `json:"special_tokens"`
	// BertProcessing
	Sep []json.RawMessage `json:"sep"`
	Cls []json.RawMessage `json:"cls"`
}

// LoadTokenizer reads a Hugging Face tokenizer.json. Its truncation section is ignored (Tokenize never
// truncates; Encode truncates as sentence-transformers does), and of padding
// only pad_id is kept, for PadID.
func LoadTokenizer(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := parseTokenizer(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

func parseTokenizer(data []byte) (*Tokenizer, error) {
	var f tjFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if !isClassicBert(&f) {
		return parsePipeline(&f)
	}
	t := &Tokenizer{}
	if err := t.parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	var pre tjType
	if err := unmarshalSection("pre_tokenizer", f.PreTokenizer, &pre); err != nil {
		return nil, err
	}
	if pre.Type != "BertPreTokenizer" {
		return nil, fmt.Errorf("unsupported pre_tokenizer type %q (want BertPreTokenizer)", pre.Type)
	}
	if err := t.parseModel(f.Model); err != nil {
		return nil, err
	}
	if err := t.parseAdded(f.AddedTokens); err != nil {
		return nil, err
	}
	if err := t.parsePostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	switch {
	case f.Padding != nil:
		t.padID = f.Padding.PadID
	default:
		if id, ok := t.vocab["[PAD]"]; ok {
			t.padID = id
		}
	}
	t.scratchers.New = func() any { return new(tokScratch) }
	return t, nil
}

func unmarshalSection(name string, raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("missing %s", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("malformed %s: %w", name, err)
	}
	return nil
}

func (t *Tokenizer) parseNormalizer(raw json.RawMessage) error {
	var typ tjType
	if err := unmarshalSection("normalizer", raw, &typ); err != nil {
		return err
	}
	if typ.Type != "BertNormalizer" {
		return fmt.Errorf("unsupported normalizer type %q (want BertNormalizer)", typ.Type)
	}
	var n tjBertNormalizer
	if err := json.Unmarshal(raw, &n); err != nil {
		return fmt.Errorf("malformed normalizer: %w", err)
	}
	or := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	t.cleanText = or(n.CleanText, true)
	t.chinese = or(n.HandleChineseChars, true)
	t.lowercase = or(n.Lowercase, true)
	// HF: strip_accents null means "do whatever lowercase does".
	t.stripAcc = or(n.StripAccents, t.lowercase)
	return nil
}

func (t *Tokenizer) parseModel(raw json.RawMessage) error {
	var m tjWordPiece
	if err := unmarshalSection("model", raw, &m); err != nil {
		return err
	}
	wp, err := newWordPiece(&m)
	if err != nil {
		return err
	}
	t.wordPiece = *wp
	for tok, id := range m.Vocab {
		t.setToken(id, tok)
	}
	return nil
}

// newWordPiece builds HF's WordPiece model from its JSON.
func newWordPiece(m *tjWordPiece) (*wordPiece, error) {
	if m.Type != "WordPiece" {
		return nil, fmt.Errorf("unsupported model type %q (want WordPiece)", m.Type)
	}
	if len(m.Vocab) == 0 {
		return nil, errors.New("model.vocab is empty")
	}
	unk, prefix, maxChars := "[UNK]", "##", 100
	if m.UnkToken != nil {
		unk = *m.UnkToken
	}
	if m.ContinuingSubwordPrefix != nil {
		prefix = *m.ContinuingSubwordPrefix
	}
	if m.MaxInputCharsPerWord != nil {
		maxChars = *m.MaxInputCharsPerWord
	}
	if maxChars < 0 {
		return nil, fmt.Errorf("model.max_input_chars_per_word is negative (%d)", maxChars)
	}
	unkID, ok := m.Vocab[unk]
	if !ok {
		return nil, fmt.Errorf("unk_token %q is not in model.vocab", unk)
	}
	t := &wordPiece{vocab: m.Vocab, unkID: unkID, maxChars: maxChars}
	t.cont = make(map[string]int64)
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab: negative id %d for %q", id, tok)
		}
		t.maxVocab = max(t.maxVocab, len(tok))
		if rest, ok := strings.CutPrefix(tok, prefix); ok {
			t.cont[rest] = id
			t.maxCont = max(t.maxCont, len(rest))
		}
	}
	return t, nil
}

func (t *Tokenizer) setToken(id int64, tok string) {
	if id >= int64(len(t.idToToken)) {
		t.idToToken = slices.Grow(t.idToToken, int(id)+1-len(t.idToToken))[:id+1]
	}
	t.idToToken[id] = tok
}

func (t *Tokenizer) parseAdded(list []tjAddedToken) error {
	for _, a := range list {
		if a.Normalized || a.SingleWord || a.LStrip || a.RStrip {
			return fmt.Errorf("added token %q: normalized/single_word/lstrip/rstrip are not supported", a.Content)
		}
		if a.ID < 0 {
			return fmt.Errorf("added token %q: negative id %d", a.Content, a.ID)
		}
		t.setToken(a.ID, a.Content)
		if a.Content == "" {
			continue
		}
		b := a.Content[0]
		t.added[b] = append(t.added[b], addedToken{content: a.Content, id: a.ID})
	}
	for i := range t.added {
		// Longest first gives aho-corasick's leftmost-longest match.
		slices.SortStableFunc(t.added[i], func(x, y addedToken) int { return len(y.content) - len(x.content) })
	}
	return nil
}

func (t *Tokenizer) parsePostProcessor(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var p tjPostProcessor
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("malformed post_processor: %w", err)
	}
	switch p.Type {
	case "TemplateProcessing":
		seen := false
		for _, piece := range p.Single {
			switch {
			case piece.Sequence != nil:
				if seen || piece.Sequence.ID != "A" {
					return errors.New("post_processor: single template must hold sequence A once")
				}
				seen = true
			case piece.SpecialToken != nil:
				st, ok := p.SpecialTokens[piece.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("post_processor: special token %q not defined", piece.SpecialToken.ID)
				}
				if seen {
					t.suffixIDs = append(t.suffixIDs, st.IDs...)
				} else {
					t.prefixIDs = append(t.prefixIDs, st.IDs...)
				}
			default:
				return errors.New("post_processor: unknown template piece")
			}
		}
		if !seen {
			return errors.New("post_processor: single template has no sequence")
		}
	case "BertProcessing", "RobertaProcessing":
		// RobertaProcessing differs in offsets and pairs only.
		cls, err := bertProcessingID(p.Cls)
		if err != nil {
			return fmt.Errorf("post_processor.cls: %w", err)
		}
		sep, err := bertProcessingID(p.Sep)
		if err != nil {
			return fmt.Errorf("post_processor.sep: %w", err)
		}
		t.prefixIDs, t.suffixIDs = []int64{cls}, []int64{sep}
	default:
		return fmt.Errorf("unsupported post_processor type %q (want TemplateProcessing, BertProcessing or RobertaProcessing)", p.Type)
	}
	for _, id := range slices.Concat(t.prefixIDs, t.suffixIDs) {
		if id < 0 {
			return fmt.Errorf("post_processor: negative id %d", id)
		}
		if id >= int64(len(t.idToToken)) || t.idToToken[id] == "" {
			return fmt.Errorf("post_processor: id %d is not in the vocabulary", id)
		}
	}
	return nil
}

// bertProcessingID reads a ["[CLS]", 101] pair.
func bertProcessingID(pair []json.RawMessage) (int64, error) {
	if len(pair) != 2 {
		return 0, errors.New("want [token, id]")
	}
	var id int64
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return 0, err
	}
	return id, nil
}

// VocabSize is one more than the largest token id (30522 for MiniLM).
func (t *Tokenizer) VocabSize() int { return len(t.idToToken) }

// PadID is the padding id from tokenizer.json (0, "[PAD]").
func (t *Tokenizer) PadID() int64 { return t.padID }

// TokenString returns the token for id, or "" if there is none.
func (t *Tokenizer) TokenString(id int64) string {
	if id < 0 || id >= int64(len(t.idToToken)) {
		return ""
	}
	return t.idToToken[id]
}

// Tokenize returns HF's encode(text).ids: special tokens included, no truncation.
func (t *Tokenizer) Tokenize(text string) ([]int64, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w (first bad byte at offset %d)", ErrInvalidUTF8, InvalidUTF8Offset(text))
	}
	if t.pipe != nil {
		ids := make([]int64, 0, len(t.prefixIDs)+len(t.suffixIDs)+len(text)/3+1)
		ids = append(ids, t.prefixIDs...)
		ids, err := t.pipe.appendIDs(ids, text)
		if err != nil {
			return nil, err
		}
		return append(ids, t.suffixIDs...), nil
	}
	s := t.scratchers.Get().(*tokScratch)
	defer t.scratchers.Put(s)
	ids := make([]int64, 0, len(t.prefixIDs)+len(t.suffixIDs)+len(text)/3+1)
	ids = append(ids, t.prefixIDs...)
	// Special tokens are cut out of the raw text before normalization.
	last := 0
	for i := 0; i < len(text); i++ {
		for _, a := range t.added[text[i]] {
			if strings.HasPrefix(text[i:], a.content) {
				ids = t.appendSegment(ids, s, text[last:i])
				ids = append(ids, a.id)
				i += len(a.content) - 1
				last = i + 1
				break
			}
		}
	}
	ids = t.appendSegment(ids, s, text[last:])
	return append(ids, t.suffixIDs...), nil
}

// Truncation says which end of a text over the maximum length is cut, as
// HF tokenizers' enable_truncation(direction=...) and TEI's
// truncation_direction.
type Truncation int

const (
	// TruncateRight keeps the first tokens: sentence-transformers' and
	// TEI's default.
	TruncateRight Truncation = iota
	// TruncateLeft keeps the last tokens.
	TruncateLeft
)

// ParseTruncationDirection reads TEI's truncation_direction: "Right" or
// "Left", spelled as TEI's serde enum accepts them.
func ParseTruncationDirection(s string) (Truncation, error) {
	switch s {
	case "Right":
		return TruncateRight, nil
	case "Left":
		return TruncateLeft, nil
	}
	return TruncateRight, fmt.Errorf("truncation_direction %q is not \"Right\" or \"Left\"", s)
}

// Encode follows sentence-transformers: Python str.strip(), tokenize, then
// keep the first maxLen-2 word pieces between [CLS] and [SEP].
func (t *Tokenizer) Encode(text string, maxLen int) (ids []int64, truncated bool, err error) {
	return t.EncodeTruncating(text, maxLen, TruncateRight)
}

// EncodeTruncating is Encode cutting the side given. Like HF tokenizers,
// truncation happens before the post-processor: the special tokens stay
// and the text's own tokens are cut.
func (t *Tokenizer) EncodeTruncating(text string, maxLen int, side Truncation) (ids []int64, truncated bool, err error) {
	special := len(t.prefixIDs) + len(t.suffixIDs)
	if maxLen < 2 || maxLen < special {
		return nil, false, fmt.Errorf("encode: maxLen %d is below %d", maxLen, max(2, special))
	}
	ids, err = t.Tokenize(strings.TrimFunc(text, isPythonSpace))
	if err != nil {
		return nil, false, err
	}
	if len(ids) <= maxLen {
		return ids, false, nil
	}
	// A fresh slice: the full one can be thousands of ids long.
	if side == TruncateLeft {
		keep := maxLen - special
		return slices.Concat(t.prefixIDs, ids[len(ids)-len(t.suffixIDs)-keep:]), true, nil
	}
	return slices.Concat(ids[:maxLen-len(t.suffixIDs)], t.suffixIDs), true, nil
}

// InvalidUTF8Offset returns the byte offset of s's first invalid UTF-8
// sequence, or -1 if s is valid.
func InvalidUTF8Offset(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// isPythonSpace is str.isspace: Go's White_Space plus the ASCII
// information separators 0x1C-0x1F.
func isPythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1C && r <= 0x1F)
}

// ASCII character classes, so the common case avoids table searches.
const (
	acRemove = 1 << iota // dropped by clean_text
	acSpace              // Rust char::is_whitespace
	acPunct              // is_bert_punc
	acUpper
)

var asciiClass = func() (c [utf8.RuneSelf]uint8) {
	for r := range rune(utf8.RuneSelf) {
		if isHFControl(r) {
			c[r] |= acRemove
		}
		if unicode.IsSpace(r) {
			c[r] |= acSpace
		}
		if isBertPunct(r) {
			c[r] |= acPunct
		}
		if 'A' <= r && r <= 'Z' {
			c[r] |= acUpper
		}
	}
	return c
}()

// appendSegment normalizes, pre-tokenizes and word-pieces text holding no
// special tokens.
func (t *Tokenizer) appendSegment(ids []int64, s *tokScratch, text string) []int64 {
	if text == "" {
		return ids
	}
	norm := t.normalize(s, text)
	start := -1 // start of the current word, -1 if none
	for i := 0; i < len(norm); {
		var space, punct bool
		size := 1
		if b := norm[i]; b < utf8.RuneSelf {
			space, punct = asciiClass[b]&acSpace != 0, asciiClass[b]&acPunct != 0
		} else {
			var r rune
			r, size = utf8.DecodeRune(norm[i:])
			space = unicode.IsSpace(r)
			punct = !space && isBertPunct(r)
		}
		if space || punct {
			if start >= 0 {
				ids = t.appendWord(ids, norm[start:i])
				start = -1
			}
			if punct {
				ids = t.appendWord(ids, norm[i:i+size])
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		ids = t.appendWord(ids, norm[start:])
	}
	return ids
}

// normalize applies BertNormalizer in HF's order: clean text, space out
// CJK, strip accents (NFD, drop Mn), lowercase. Lowercasing ASCII early
// is safe because NFD leaves ASCII alone, and it saves all-ASCII text a pass.
func (t *bertNormalizer) normalize(s *tokScratch, text string) []byte {
	out := s.a[:0]
	ascii := true
	for i := 0; i < len(text); {
		if b := text[i]; b < utf8.RuneSelf {
			i++
			c := asciiClass[b]
			switch {
			case !t.cleanText:
			case c&acRemove != 0:
				continue
			case c&acSpace != 0:
				b = ' '
			}
			if t.lowercase && c&acUpper != 0 {
				b += 'a' - 'A'
			}
			out = append(out, b)
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		ascii = false
		if t.cleanText {
			if isHFControl(r) {
				continue
			}
			if unicode.IsSpace(r) {
				r = ' '
			}
		}
		if t.chinese && isChineseChar(r) {
			out = append(out, ' ')
			out = utf8.AppendRune(out, r)
			out = append(out, ' ')
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	s.a = out
	if ascii || (!t.stripAcc && !t.lowercase) {
		return out
	}
	src := out
	if t.stripAcc {
		s.b = norm.NFD.Append(s.b[:0], out...)
		src = s.b
	}
	dst := s.c[:0]
	for i := 0; i < len(src); {
		if b := src[i]; b < utf8.RuneSelf {
			// NFD can yield new capitals: "Å" is "A\u030a".
			if t.lowercase && asciiClass[b]&acUpper != 0 {
				b += 'a' - 'A'
			}
			dst = append(dst, b)
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		i += size
		if t.stripAcc && isHFNonspacingMark(r) {
			continue
		}
		if t.lowercase {
			dst = appendLower(dst, r)
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	s.c = dst
	return dst
}

// appendLower mirrors Rust's char::to_lowercase, whose only multi-char
// result is U+0130 -> "i\u0307" (Go's simple mapping gives just "i"), and
// which knows the Unicode 16/17 case pairs that Go's Unicode 15 tables lack.
func appendLower(dst []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, byte(r))
	}
	switch {
	case r == 0x130:
		return append(dst, "i\u0307"...)
	case r >= 0x10D50 && r <= 0x10D65: // Garay
		r += 0x20
	case r >= 0x16EA0 && r <= 0x16EB8: // Beria Erfe
		r += 0x1B
	case r == 0x1C89:
		r = 0x1C8A
	case r == 0xA7CB:
		r = 0x0264
	case r == 0xA7DC:
		r = 0x019B
	case r == 0xA7CC || r == 0xA7CE || r == 0xA7D2 || r == 0xA7D4 || r == 0xA7DA:
		r++
	default:
		r = unicode.ToLower(r)
	}
	return utf8.AppendRune(dst, r)
}

// appendWord runs WordPiece greedy longest-match-first on one word. A word
// that cannot be fully covered, or is too long, becomes a single [UNK].
func (t *wordPiece) appendWord(ids []int64, word []byte) []int64 {
	if utf8.RuneCount(word) > t.maxChars {
		return append(ids, t.unkID)
	}
	if id, ok := t.vocab[string(word)]; ok {
		return append(ids, id)
	}
	n := len(ids)
	for start := 0; start < len(word); {
		table, limit := t.vocab, t.maxVocab
		if start > 0 {
			table, limit = t.cont, t.maxCont
		}
		end := min(len(word), start+limit)
		for end < len(word) && !utf8.RuneStart(word[end]) {
			end--
		}
		found := false
		for end > start {
			if id, ok := table[string(word[start:end])]; ok {
				ids = append(ids, id)
				found = true
				break
			}
			end--
			for end > start && !utf8.RuneStart(word[end]) {
				end--
			}
		}
		if !found {
			return append(ids[:n], t.unkID)
		}
		start = end
	}
	return ids
}

// HF classifies characters with the Rust unicode_categories crate, whose
// tables are Unicode 8.0, not with Go's (Unicode 15): about 600 newer or
// re-categorised characters would otherwise differ. The tables below were
// derived by probing every code point through tokenizers 0.23.3.

// isHFControl is is_other() (Cc, Cf or Co, not Cn) plus \0 and U+FFFD,
// i.e. exactly what clean_text removes.
func isHFControl(r rune) bool {
	if r < utf8.RuneSelf {
		return (r < 0x20 || r == 0x7f) && r != '\t' && r != '\n' && r != '\r'
	}
	return inRanges(r, hfOther)
}

// isHFNonspacingMark is is_mark_nonspacing (Mn).
func isHFNonspacingMark(r rune) bool {
	return r >= 0x300 && inRanges(r, hfNonspacingMark)
}

// isBertPunct is is_bert_punc: ASCII punctuation (which includes symbols
// such as $ + < = > ^ ` | ~) or a P* character.
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126)
	}
	return inRanges(r, hfPunct)
}

type runeRange struct{ lo, hi rune }

func inRanges(r rune, table []runeRange) bool {
	lo, hi := 0, len(table)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case r < table[m].lo:
			hi = m
		case r > table[m].hi:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// isChineseChar is the CJK ideograph set of HF's BertNormalizer. Its
// range 0x2B920-0x2CEAF (not 0x2B820) is HF's, kept for exactness.
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
