package hf

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

func parsePreTokenizerJSON(raw json.RawMessage, what string) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := typeOf(raw, what)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var v struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		var seq sequencePreTokenizer
		for i, r := range v.PreTokenizers {
			p, err := parsePreTokenizerJSON(r, fmt.Sprintf("%s.pretokenizers[%d]", what, i))
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	case "BertPreTokenizer":
		return bertPreTokenizer{}, nil
	case "Whitespace":
		return whitespacePreTokenizer{}, nil
	case "WhitespaceSplit":
		return charSplitter{is: isRustWhitespace, behavior: behaviorRemoved}, nil
	case "Punctuation":
		var v struct {
			Behavior *string `json:"behavior"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		b := behaviorIsolated
		if v.Behavior != nil {
			if b, err = parseBehavior(*v.Behavior); err != nil {
				return nil, fmt.Errorf("%s Punctuation: %w", what, err)
			}
		}
		return charSplitter{is: isBertPunct, behavior: b}, nil
	case "Digits":
		var v struct {
			Individual bool `json:"individual_digits"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		b := behaviorContiguous
		if v.Individual {
			b = behaviorIsolated
		}
		return charSplitter{is: isRustNumeric, behavior: b}, nil
	case "Metaspace":
		var v struct {
			Replacement    *string `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
			Split          *bool   `json:"split"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		m := metaspace{replacement: "▁", scheme: "always", splitOn: true}
		if v.Replacement != nil {
			if utf8.RuneCountInString(*v.Replacement) != 1 {
				return nil, fmt.Errorf("%s Metaspace: replacement %q is not one character", what, *v.Replacement)
			}
			m.replacement = *v.Replacement
		}
		if v.AddPrefixSpace != nil && !*v.AddPrefixSpace {
			m.scheme = "never"
		}
		if v.PrependScheme != nil {
			m.scheme = *v.PrependScheme
		}
		switch m.scheme {
		case "always", "first", "never":
		default:
			return nil, fmt.Errorf("%s Metaspace: unknown prepend_scheme %q", what, m.scheme)
		}
		if v.Split != nil {
			m.splitOn = *v.Split
		}
		return m, nil
	case "ByteLevel":
		var v struct {
			AddPrefixSpace *bool `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		b := byteLevel{addPrefixSpace: v.AddPrefixSpace == nil || *v.AddPrefixSpace}
		if v.UseRegex == nil || *v.UseRegex {
			b.regex = gpt2Pattern()
		}
		return b, nil
	case "Split":
		var v struct {
			Pattern  tjPattern `json:"pattern"`
			Behavior string    `json:"behavior"`
			Invert   bool      `json:"invert"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		pat, err := v.Pattern.compile()
		if err != nil {
			return nil, fmt.Errorf("%s Split: %w", what, err)
		}
		b, err := parseBehavior(v.Behavior)
		if err != nil {
			return nil, fmt.Errorf("%s Split: %w", what, err)
		}
		return patternSplitter{pattern: pat, behavior: b, invert: v.Invert}, nil
	default:
		return nil, fmt.Errorf("unsupported %s type %q", what, typ)
	}
}

type sequencePreTokenizer []preTokenizer

func (s sequencePreTokenizer) split(dst []piece, p piece) []piece {
	cur := []piece{p}
	for _, pt := range s {
		var next []piece
		for _, c := range cur {
			next = pt.split(next, c)
		}
		cur = next
	}
	return append(dst, cur...)
}

// splitBehavior is HF's SplitDelimiterBehavior.
type splitBehavior int

const (
	behaviorRemoved splitBehavior = iota
	behaviorIsolated
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Removed":
		return behaviorRemoved, nil
	case "Isolated":
		return behaviorIsolated, nil
	case "MergedWithPrevious":
		return behaviorMergedWithPrevious, nil
	case "MergedWithNext":
		return behaviorMergedWithNext, nil
	case "Contiguous":
		return behaviorContiguous, nil
	}
	return 0, fmt.Errorf("unknown split behavior %q", s)
}

// span is a byte range of a piece and whether the pattern matched it.
type span struct {
	start, end int
	match      bool
}

// applyBehavior mirrors NormalizedString::split: it turns the spans
// covering p into pieces, dropping removed and empty ones.
func applyBehavior(dst []piece, p piece, spans []span, b splitBehavior) []piece {
	type out struct {
		start, end int
		remove     bool
	}
	var res []out
	switch b {
	case behaviorIsolated:
		for _, s := range spans {
			res = append(res, out{s.start, s.end, false})
		}
	case behaviorRemoved:
		for _, s := range spans {
			res = append(res, out{s.start, s.end, s.match})
		}
	case behaviorContiguous:
		prev := false
		for _, s := range spans {
			if s.match == prev && len(res) > 0 {
				res[len(res)-1].end = s.end
			} else {
				res = append(res, out{s.start, s.end, false})
			}
			prev = s.match
		}
	case behaviorMergedWithPrevious:
		prev := false
		for _, s := range spans {
			if s.match && !prev && len(res) > 0 {
				res[len(res)-1].end = s.end
			} else {
				res = append(res, out{s.start, s.end, false})
			}
			prev = s.match
		}
	case behaviorMergedWithNext:
		prev := false
		for i := len(spans) - 1; i >= 0; i-- {
			s := spans[i]
			if s.match && !prev && len(res) > 0 {
				res[len(res)-1].start = s.start
			} else {
				res = append(res, out{s.start, s.end, false})
			}
			prev = s.match
		}
		for i, j := 0, len(res)-1; i < j; i, j = i+1, j-1 {
			res[i], res[j] = res[j], res[i]
		}
	}
	for _, o := range res {
		if o.remove || o.start == o.end {
			continue
		}
		dst = append(dst, piece{text: p.text[o.start:o.end], first: p.first && o.start == 0})
	}
	return dst
}

// charSplitter splits on every character that is, one span per character
// (HF's char-predicate Pattern).
type charSplitter struct {
	is       func(rune) bool
	behavior splitBehavior
}

func (c charSplitter) split(dst []piece, p piece) []piece {
	return applyBehavior(dst, p, charSpans(p.text, c.is), c.behavior)
}

func charSpans(s string, is func(rune) bool) []span {
	var spans []span
	last := 0
	for i, r := range s {
		if is(r) {
			if last < i {
				spans = append(spans, span{last, i, false})
			}
			spans = append(spans, span{i, i + utf8.RuneLen(r), true})
			last = i + utf8.RuneLen(r)
		}
	}
	if last < len(s) {
		spans = append(spans, span{last, len(s), false})
	}
	return spans
}

// bertPreTokenizer splits on whitespace (removed) and isolates BERT
// punctuation.
type bertPreTokenizer struct{}

func (bertPreTokenizer) split(dst []piece, p piece) []piece {
	var ws []piece
	ws = applyBehavior(ws, p, charSpans(p.text, isRustWhitespace), behaviorRemoved)
	for _, w := range ws {
		dst = applyBehavior(dst, w, charSpans(w.text, isBertPunct), behaviorIsolated)
	}
	return dst
}

// whitespacePreTokenizer keeps the matches of \w+|[^\w\s]+ (Rust regex
// classes) and drops the rest.
type whitespacePreTokenizer struct{}

func (whitespacePreTokenizer) split(dst []piece, p piece) []piece {
	s := p.text
	var spans []span
	last := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		class := 0 // 0 space, 1 word, 2 other
		if isRegexWord(r) {
			class = 1
		} else if !isRustWhitespace(r) {
			class = 2
		}
		if class == 0 {
			i += size
			continue
		}
		j := i + size
		for j < len(s) {
			r2, size2 := utf8.DecodeRuneInString(s[j:])
			c2 := 0
			if isRegexWord(r2) {
				c2 = 1
			} else if !isRustWhitespace(r2) {
				c2 = 2
			}
			if c2 != class {
				break
			}
			j += size2
		}
		if last < i {
			spans = append(spans, span{last, i, false})
		}
		spans = append(spans, span{i, j, true})
		last, i = j, j
	}
	if last < len(s) {
		spans = append(spans, span{last, len(s), false})
	}
	for i := range spans {
		spans[i].match = !spans[i].match // invert: keep the matches
	}
	return applyBehavior(dst, p, spans, behaviorRemoved)
}

// isRegexWord is Rust regex's Unicode \w: Alphabetic, M, Nd, Pc, Join_Control.
func isRegexWord(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.Is(unicode.M, r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) ||
		r == 0x200C || r == 0x200D
}

// isRustNumeric is char::is_numeric: Nd, Nl or No.
func isRustNumeric(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.In(r, unicode.Nd, unicode.Nl, unicode.No)
}

type metaspace struct {
	replacement string
	scheme      string // always, first, never
	splitOn     bool
}

func (m metaspace) split(dst []piece, p piece) []piece {
	s := strings.ReplaceAll(p.text, " ", m.replacement)
	switch m.scheme {
	case "always":
		if !strings.HasPrefix(s, m.replacement) {
			s = m.replacement + s
		}
	case "first":
		if p.first && !strings.HasPrefix(s, m.replacement) {
			s = m.replacement + s
		}
	}
	q := piece{text: s, first: p.first}
	if !m.splitOn {
		return append(dst, q)
	}
	r, _ := utf8.DecodeRuneInString(m.replacement)
	return applyBehavior(dst, q, charSpans(s, func(c rune) bool { return c == r }), behaviorMergedWithNext)
}

// byteLevel is GPT-2's pre-tokenizer: an optional leading space, the GPT-2
// regex (Isolated), then every byte mapped to a printable character.
type byteLevel struct {
	addPrefixSpace bool
	regex          splitPattern // nil: no regex split
}

func (b byteLevel) split(dst []piece, p piece) []piece {
	q := p
	if b.addPrefixSpace && !strings.HasPrefix(q.text, " ") {
		q.text = " " + q.text
	}
	n := len(dst)
	if b.regex != nil {
		dst = applyBehavior(dst, q, matchSpans(q.text, b.regex, false), behaviorIsolated)
	} else if q.text != "" {
		dst = append(dst, q)
	}
	for i := n; i < len(dst); i++ {
		dst[i].text = byteLevelEncode(dst[i].text)
	}
	return dst
}

var byteToRune = func() (t [256]rune) {
	n := 0
	for b := range 256 {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
	}
	return t
}()

func byteLevelEncode(s string) string {
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = utf8.AppendRune(out, byteToRune[s[i]])
	}
	return string(out)
}

// patternSplitter is HF's Split pre-tokenizer.
type patternSplitter struct {
	pattern  splitPattern
	behavior splitBehavior
	invert   bool
}

func (ps patternSplitter) split(dst []piece, p piece) []piece {
	return applyBehavior(dst, p, matchSpans(p.text, ps.pattern, ps.invert), ps.behavior)
}

// matchSpans mirrors Pattern::find_matches: matches and the gaps between
// them, in order, covering s.
func matchSpans(s string, pat splitPattern, invert bool) []span {
	if s == "" {
		return []span{{0, 0, invert}}
	}
	var spans []span
	prev := 0
	for _, m := range pat.findAll(s) {
		if prev != m[0] {
			spans = append(spans, span{prev, m[0], invert})
		}
		spans = append(spans, span{m[0], m[1], !invert})
		prev = m[1]
	}
	if prev != len(s) {
		spans = append(spans, span{prev, len(s), invert})
	}
	return spans
}

// splitPattern finds non-overlapping matches as [start, end) byte offsets.
type splitPattern interface {
	findAll(s string) [][2]int
}

// tjPattern is {"String": "..."} or {"Regex": "..."}.
type tjPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func (p tjPattern) compile() (splitPattern, error) {
	switch {
	case p.String != nil:
		return literalPattern(*p.String), nil
	case p.Regex != nil:
		re, err := regexp2.Compile(*p.Regex, regexp2.None)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", *p.Regex, err)
		}
		return &regexPattern{re: re}, nil
	}
	return nil, fmt.Errorf("pattern is neither String nor Regex")
}

type literalPattern string

func (l literalPattern) findAll(s string) [][2]int {
	if l == "" {
		return nil
	}
	var out [][2]int
	for i := 0; ; {
		j := strings.Index(s[i:], string(l))
		if j < 0 {
			return out
		}
		out = append(out, [2]int{i + j, i + j + len(l)})
		i += j + len(l)
	}
}

// regexPattern is an Oniguruma-style regex (lookahead included) through
// regexp2, whose offsets are in runes.
type regexPattern struct{ re *regexp2.Regexp }

func (r *regexPattern) findAll(s string) [][2]int {
	runes := []rune(s)
	var out [][2]int
	m, err := r.re.FindRunesMatch(runes)
	if err != nil || m == nil {
		return nil
	}
	// Rune index to byte offset, advanced incrementally.
	ri, bi := 0, 0
	toByte := func(idx int) int {
		for ri < idx {
			bi += utf8.RuneLen(runes[ri])
			ri++
		}
		return bi
	}
	for m != nil {
		start := toByte(m.Index)
		end := toByte(m.Index + m.Length)
		out = append(out, [2]int{start, end})
		if m, err = r.re.FindNextMatch(m); err != nil {
			break
		}
	}
	return out
}

// gpt2Pattern is the regex of HF's ByteLevel pre-tokenizer.
var gpt2Pattern = sync.OnceValue(func() splitPattern {
	return &regexPattern{re: regexp2.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, regexp2.None)}
})
