package hf

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

// Tokenizer is a BERT WordPiece tokenizer read from a Hugging Face tokenizer.json.
// It reproduces tokenizers' BertNormalizer, BertPreTokenizer, WordPiece model
// and special-token post-processing. It is read-only after loading and safe
// for concurrent use.
type Tokenizer struct {
	// vocab holds word-initial pieces, cont the continuation pieces keyed
	// without the "##" prefix so lookups need no string building.
	vocab      map[string]int64
	cont       map[string]int64
	maxVocab   int // longest key in vocab, in bytes
	maxCont    int // longest key in cont, in bytes
	unkID      int64
	maxChars   int
	idToToken  []string
	padID      int64
	prefixIDs  []int64 // post-processor tokens before the sequence ([CLS])
	suffixIDs  []int64 // post-processor tokens after the sequence ([SEP])
	cleanText  bool
	chinese    bool
	stripAcc   bool
	lowercase  bool
	added      [256][]addedToken // by first byte, longest first
	scratchers sync.Pool
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

// LoadTokenizer reads a Hugging Face tokenizer.json describing a BERT
// WordPiece tokenizer. Its truncation section is ignored (Tokenize never
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
	if m.Type != "WordPiece" {
		return fmt.Errorf("unsupported model type %q (want WordPiece)", m.Type)
	}
	if len(m.Vocab) == 0 {
		return errors.New("model.vocab is empty")
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
		return fmt.Errorf("model.max_input_chars_per_word is negative (%d)", maxChars)
	}
	unkID, ok := m.Vocab[unk]
	if !ok {
		return fmt.Errorf("unk_token %q is not in model.vocab", unk)
	}
	t.vocab, t.unkID, t.maxChars = m.Vocab, unkID, maxChars
	t.cont = make(map[string]int64)
	for tok, id := range m.Vocab {
		if id < 0 {
			return fmt.Errorf("model.vocab: negative id %d for %q", id, tok)
		}
		t.maxVocab = max(t.maxVocab, len(tok))
		if rest, ok := strings.CutPrefix(tok, prefix); ok {
			t.cont[rest] = id
			t.maxCont = max(t.maxCont, len(rest))
		}
		t.setToken(id, tok)
	}
	return nil
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
	case "BertProcessing":
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
		return fmt.Errorf("unsupported post_processor type %q (want TemplateProcessing or BertProcessing)", p.Type)
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

// Encode follows sentence-transformers: Python str.strip(), tokenize, then
// keep the first maxLen-2 word pieces between [CLS] and [SEP].
func (t *Tokenizer) Encode(text string, maxLen int) (ids []int64, truncated bool, err error) {
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
func (t *Tokenizer) normalize(s *tokScratch, text string) []byte {
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
func (t *Tokenizer) appendWord(ids []int64, word []byte) []int64 {
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

// hfOther: Unicode 8.0 Cc, Cf and Co, plus U+0000 and U+FFFD.
var hfOther = []runeRange{
	{0x0000, 0x0008}, {0x000B, 0x000C}, {0x000E, 0x001F}, {0x007F, 0x009F}, {0x00AD, 0x00AD},
	{0x0600, 0x0605}, {0x061C, 0x061C}, {0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x180E, 0x180E},
	{0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064}, {0x2066, 0x206F}, {0xE000, 0xF8FF},
	{0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0xFFFD, 0xFFFD}, {0x110BD, 0x110BD}, {0x1BCA0, 0x1BCA3},
	{0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD},
}

// hfNonspacingMark: Unicode 8.0 Mn.
var hfNonspacingMark = []runeRange{
	{0x0300, 0x036F}, {0x0483, 0x0487}, {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
	{0x05C4, 0x05C5}, {0x05C7, 0x05C7}, {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0670, 0x0670},
	{0x06D6, 0x06DC}, {0x06DF, 0x06E4}, {0x06E7, 0x06E8}, {0x06EA, 0x06ED}, {0x0711, 0x0711},
	{0x0730, 0x074A}, {0x07A6, 0x07B0}, {0x07EB, 0x07F3}, {0x0816, 0x0819}, {0x081B, 0x0823},
	{0x0825, 0x0827}, {0x0829, 0x082D}, {0x0859, 0x085B}, {0x08E3, 0x0902}, {0x093A, 0x093A},
	{0x093C, 0x093C}, {0x0941, 0x0948}, {0x094D, 0x094D}, {0x0951, 0x0957}, {0x0962, 0x0963},
	{0x0981, 0x0981}, {0x09BC, 0x09BC}, {0x09C1, 0x09C4}, {0x09CD, 0x09CD}, {0x09E2, 0x09E3},
	{0x0A01, 0x0A02}, {0x0A3C, 0x0A3C}, {0x0A41, 0x0A42}, {0x0A47, 0x0A48}, {0x0A4B, 0x0A4D},
	{0x0A51, 0x0A51}, {0x0A70, 0x0A71}, {0x0A75, 0x0A75}, {0x0A81, 0x0A82}, {0x0ABC, 0x0ABC},
	{0x0AC1, 0x0AC5}, {0x0AC7, 0x0AC8}, {0x0ACD, 0x0ACD}, {0x0AE2, 0x0AE3}, {0x0B01, 0x0B01},
	{0x0B3C, 0x0B3C}, {0x0B3F, 0x0B3F}, {0x0B41, 0x0B44}, {0x0B4D, 0x0B4D}, {0x0B56, 0x0B56},
	{0x0B62, 0x0B63}, {0x0B82, 0x0B82}, {0x0BC0, 0x0BC0}, {0x0BCD, 0x0BCD}, {0x0C00, 0x0C00},
	{0x0C3E, 0x0C40}, {0x0C46, 0x0C48}, {0x0C4A, 0x0C4D}, {0x0C55, 0x0C56}, {0x0C62, 0x0C63},
	{0x0C81, 0x0C81}, {0x0CBC, 0x0CBC}, {0x0CBF, 0x0CBF}, {0x0CC6, 0x0CC6}, {0x0CCC, 0x0CCD},
	{0x0CE2, 0x0CE3}, {0x0D01, 0x0D01}, {0x0D41, 0x0D44}, {0x0D4D, 0x0D4D}, {0x0D62, 0x0D63},
	{0x0DCA, 0x0DCA}, {0x0DD2, 0x0DD4}, {0x0DD6, 0x0DD6}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A},
	{0x0E47, 0x0E4E}, {0x0EB1, 0x0EB1}, {0x0EB4, 0x0EB9}, {0x0EBB, 0x0EBC}, {0x0EC8, 0x0ECD},
	{0x0F18, 0x0F19}, {0x0F35, 0x0F35}, {0x0F37, 0x0F37}, {0x0F39, 0x0F39}, {0x0F71, 0x0F7E},
	{0x0F80, 0x0F84}, {0x0F86, 0x0F87}, {0x0F8D, 0x0F97}, {0x0F99, 0x0FBC}, {0x0FC6, 0x0FC6},
	{0x102D, 0x1030}, {0x1032, 0x1037}, {0x1039, 0x103A}, {0x103D, 0x103E}, {0x1058, 0x1059},
	{0x105E, 0x1060}, {0x1071, 0x1074}, {0x1082, 0x1082}, {0x1085, 0x1086}, {0x108D, 0x108D},
	{0x109D, 0x109D}, {0x135D, 0x135F}, {0x1712, 0x1714}, {0x1732, 0x1734}, {0x1752, 0x1753},
	{0x1772, 0x1773}, {0x17B4, 0x17B5}, {0x17B7, 0x17BD}, {0x17C6, 0x17C6}, {0x17C9, 0x17D3},
	{0x17DD, 0x17DD}, {0x180B, 0x180D}, {0x18A9, 0x18A9}, {0x1920, 0x1922}, {0x1927, 0x1928},
	{0x1932, 0x1932}, {0x1939, 0x193B}, {0x1A17, 0x1A18}, {0x1A1B, 0x1A1B}, {0x1A56, 0x1A56},
	{0x1A58, 0x1A5E}, {0x1A60, 0x1A60}, {0x1A62, 0x1A62}, {0x1A65, 0x1A6C}, {0x1A73, 0x1A7C},
	{0x1A7F, 0x1A7F}, {0x1AB0, 0x1ABD}, {0x1B00, 0x1B03}, {0x1B34, 0x1B34}, {0x1B36, 0x1B3A},
	{0x1B3C, 0x1B3C}, {0x1B42, 0x1B42}, {0x1B6B, 0x1B73}, {0x1B80, 0x1B81}, {0x1BA2, 0x1BA5},
	{0x1BA8, 0x1BA9}, {0x1BAB, 0x1BAD}, {0x1BE6, 0x1BE6}, {0x1BE8, 0x1BE9}, {0x1BED, 0x1BED},
	{0x1BEF, 0x1BF1}, {0x1C2C, 0x1C33}, {0x1C36, 0x1C37}, {0x1CD0, 0x1CD2}, {0x1CD4, 0x1CE0},
	{0x1CE2, 0x1CE8}, {0x1CED, 0x1CED}, {0x1CF4, 0x1CF4}, {0x1CF8, 0x1CF9}, {0x1DC0, 0x1DF5},
	{0x1DFC, 0x1DFF}, {0x20D0, 0x20DC}, {0x20E1, 0x20E1}, {0x20E5, 0x20F0}, {0x2CEF, 0x2CF1},
	{0x2D7F, 0x2D7F}, {0x2DE0, 0x2DFF}, {0x302A, 0x302D}, {0x3099, 0x309A}, {0xA66F, 0xA66F},
	{0xA674, 0xA67D}, {0xA69E, 0xA69F}, {0xA6F0, 0xA6F1}, {0xA802, 0xA802}, {0xA806, 0xA806},
	{0xA80B, 0xA80B}, {0xA825, 0xA826}, {0xA8C4, 0xA8C4}, {0xA8E0, 0xA8F1}, {0xA926, 0xA92D},
	{0xA947, 0xA951}, {0xA980, 0xA982}, {0xA9B3, 0xA9B3}, {0xA9B6, 0xA9B9}, {0xA9BC, 0xA9BC},
	{0xA9E5, 0xA9E5}, {0xAA29, 0xAA2E}, {0xAA31, 0xAA32}, {0xAA35, 0xAA36}, {0xAA43, 0xAA43},
	{0xAA4C, 0xAA4C}, {0xAA7C, 0xAA7C}, {0xAAB0, 0xAAB0}, {0xAAB2, 0xAAB4}, {0xAAB7, 0xAAB8},
	{0xAABE, 0xAABF}, {0xAAC1, 0xAAC1}, {0xAAEC, 0xAAED}, {0xAAF6, 0xAAF6}, {0xABE5, 0xABE5},
	{0xABE8, 0xABE8}, {0xABED, 0xABED}, {0xFB1E, 0xFB1E}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
	{0x101FD, 0x101FD}, {0x102E0, 0x102E0}, {0x10376, 0x1037A}, {0x10A01, 0x10A03}, {0x10A05, 0x10A06},
	{0x10A0C, 0x10A0F}, {0x10A38, 0x10A3A}, {0x10A3F, 0x10A3F}, {0x10AE5, 0x10AE6}, {0x11001, 0x11001},
	{0x11038, 0x11046}, {0x1107F, 0x11081}, {0x110B3, 0x110B6}, {0x110B9, 0x110BA}, {0x11100, 0x11102},
	{0x11127, 0x1112B}, {0x1112D, 0x11134}, {0x11173, 0x11173}, {0x11180, 0x11181}, {0x111B6, 0x111BE},
	{0x111CA, 0x111CC}, {0x1122F, 0x11231}, {0x11234, 0x11234}, {0x11236, 0x11237}, {0x112DF, 0x112DF},
	{0x112E3, 0x112EA}, {0x11300, 0x11301}, {0x1133C, 0x1133C}, {0x11340, 0x11340}, {0x11366, 0x1136C},
	{0x11370, 0x11374}, {0x114B3, 0x114B8}, {0x114BA, 0x114BA}, {0x114BF, 0x114C0}, {0x114C2, 0x114C3},
	{0x115B2, 0x115B5}, {0x115BC, 0x115BD}, {0x115BF, 0x115C0}, {0x115DC, 0x115DD}, {0x11633, 0x1163A},
	{0x1163D, 0x1163D}, {0x1163F, 0x11640}, {0x116AB, 0x116AB}, {0x116AD, 0x116AD}, {0x116B0, 0x116B5},
	{0x116B7, 0x116B7}, {0x1171D, 0x1171F}, {0x11722, 0x11725}, {0x11727, 0x1172B}, {0x16AF0, 0x16AF4},
	{0x16B30, 0x16B36}, {0x16F8F, 0x16F92}, {0x1BC9D, 0x1BC9E}, {0x1D167, 0x1D169}, {0x1D17B, 0x1D182},
	{0x1D185, 0x1D18B}, {0x1D1AA, 0x1D1AD}, {0x1D242, 0x1D244}, {0x1DA00, 0x1DA36}, {0x1DA3B, 0x1DA6C},
	{0x1DA75, 0x1DA75}, {0x1DA84, 0x1DA84}, {0x1DA9B, 0x1DA9F}, {0x1DAA1, 0x1DAAF}, {0x1E8D0, 0x1E8D6},
	{0xE0100, 0xE01EF},
}

// hfPunct: ASCII punctuation and Unicode 8.0 P*.
var hfPunct = []runeRange{
	{0x0021, 0x002F}, {0x003A, 0x0040}, {0x005B, 0x0060}, {0x007B, 0x007E}, {0x00A1, 0x00A1},
	{0x00A7, 0x00A7}, {0x00AB, 0x00AB}, {0x00B6, 0x00B7}, {0x00BB, 0x00BB}, {0x00BF, 0x00BF},
	{0x037E, 0x037E}, {0x0387, 0x0387}, {0x055A, 0x055F}, {0x0589, 0x058A}, {0x05BE, 0x05BE},
	{0x05C0, 0x05C0}, {0x05C3, 0x05C3}, {0x05C6, 0x05C6}, {0x05F3, 0x05F4}, {0x0609, 0x060A},
	{0x060C, 0x060D}, {0x061B, 0x061B}, {0x061E, 0x061F}, {0x066A, 0x066D}, {0x06D4, 0x06D4},
	{0x0700, 0x070D}, {0x07F7, 0x07F9}, {0x0830, 0x083E}, {0x085E, 0x085E}, {0x0964, 0x0965},
	{0x0970, 0x0970}, {0x0AF0, 0x0AF0}, {0x0DF4, 0x0DF4}, {0x0E4F, 0x0E4F}, {0x0E5A, 0x0E5B},
	{0x0F04, 0x0F12}, {0x0F14, 0x0F14}, {0x0F3A, 0x0F3D}, {0x0F85, 0x0F85}, {0x0FD0, 0x0FD4},
	{0x0FD9, 0x0FDA}, {0x104A, 0x104F}, {0x10FB, 0x10FB}, {0x1360, 0x1368}, {0x1400, 0x1400},
	{0x166D, 0x166E}, {0x169B, 0x169C}, {0x16EB, 0x16ED}, {0x1735, 0x1736}, {0x17D4, 0x17D6},
	{0x17D8, 0x17DA}, {0x1800, 0x180A}, {0x1944, 0x1945}, {0x1A1E, 0x1A1F}, {0x1AA0, 0x1AA6},
	{0x1AA8, 0x1AAD}, {0x1B5A, 0x1B60}, {0x1BFC, 0x1BFF}, {0x1C3B, 0x1C3F}, {0x1C7E, 0x1C7F},
	{0x1CC0, 0x1CC7}, {0x1CD3, 0x1CD3}, {0x2010, 0x2027}, {0x2030, 0x2043}, {0x2045, 0x2051},
	{0x2053, 0x205E}, {0x207D, 0x207E}, {0x208D, 0x208E}, {0x2308, 0x230B}, {0x2329, 0x232A},
	{0x2768, 0x2775}, {0x27C5, 0x27C6}, {0x27E6, 0x27EF}, {0x2983, 0x2998}, {0x29D8, 0x29DB},
	{0x29FC, 0x29FD}, {0x2CF9, 0x2CFC}, {0x2CFE, 0x2CFF}, {0x2D70, 0x2D70}, {0x2E00, 0x2E2E},
	{0x2E30, 0x2E42}, {0x3001, 0x3003}, {0x3008, 0x3011}, {0x3014, 0x301F}, {0x3030, 0x3030},
	{0x303D, 0x303D}, {0x30A0, 0x30A0}, {0x30FB, 0x30FB}, {0xA4FE, 0xA4FF}, {0xA60D, 0xA60F},
	{0xA673, 0xA673}, {0xA67E, 0xA67E}, {0xA6F2, 0xA6F7}, {0xA874, 0xA877}, {0xA8CE, 0xA8CF},
	{0xA8F8, 0xA8FA}, {0xA8FC, 0xA8FC}, {0xA92E, 0xA92F}, {0xA95F, 0xA95F}, {0xA9C1, 0xA9CD},
	{0xA9DE, 0xA9DF}, {0xAA5C, 0xAA5F}, {0xAADE, 0xAADF}, {0xAAF0, 0xAAF1}, {0xABEB, 0xABEB},
	{0xFD3E, 0xFD3F}, {0xFE10, 0xFE19}, {0xFE30, 0xFE52}, {0xFE54, 0xFE61}, {0xFE63, 0xFE63},
	{0xFE68, 0xFE68}, {0xFE6A, 0xFE6B}, {0xFF01, 0xFF03}, {0xFF05, 0xFF0A}, {0xFF0C, 0xFF0F},
	{0xFF1A, 0xFF1B}, {0xFF1F, 0xFF20}, {0xFF3B, 0xFF3D}, {0xFF3F, 0xFF3F}, {0xFF5B, 0xFF5B},
	{0xFF5D, 0xFF5D}, {0xFF5F, 0xFF65}, {0x10100, 0x10102}, {0x1039F, 0x1039F}, {0x103D0, 0x103D0},
	{0x1056F, 0x1056F}, {0x10857, 0x10857}, {0x1091F, 0x1091F}, {0x1093F, 0x1093F}, {0x10A50, 0x10A58},
	{0x10A7F, 0x10A7F}, {0x10AF0, 0x10AF6}, {0x10B39, 0x10B3F}, {0x10B99, 0x10B9C}, {0x11047, 0x1104D},
	{0x110BB, 0x110BC}, {0x110BE, 0x110C1}, {0x11140, 0x11143}, {0x11174, 0x11175}, {0x111C5, 0x111C9},
	{0x111CD, 0x111CD}, {0x111DB, 0x111DB}, {0x111DD, 0x111DF}, {0x11238, 0x1123D}, {0x112A9, 0x112A9},
	{0x114C6, 0x114C6}, {0x115C1, 0x115D7}, {0x11641, 0x11643}, {0x1173C, 0x1173E}, {0x12470, 0x12474},
	{0x16A6E, 0x16A6F}, {0x16AF5, 0x16AF5}, {0x16B37, 0x16B3B}, {0x16B44, 0x16B44}, {0x1BC9F, 0x1BC9F},
	{0x1DA87, 0x1DA8B},
}
