// Package corpus is the retrieval half of RAG: it splits documents into
// chunks the encoder can read whole, embeds them into an index file, and
// answers queries with the nearest chunks by cosine similarity, as
// sentence-transformers' util.semantic_search does.
package corpus

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Chunking controls how documents are cut. Tokens are the encoder's word
// pieces, without [CLS] and [SEP].
type Chunking struct {
	// MaxTokens is the most word pieces in a chunk; longer text would be
	// truncated by the encoder and never found.
	MaxTokens int `json:"max_tokens"`
	// Overlap repeats up to this many word pieces of whole sentences from
	// the end of one chunk at the start of the next, so that a passage cut
	// at a chunk border is still whole in one of them.
	Overlap int `json:"overlap"`
}

// Validate reports settings that cannot chunk anything.
func (c Chunking) Validate() error {
	switch {
	case c.MaxTokens < 1:
		return fmt.Errorf("chunk size must be at least 1 token, got %d", c.MaxTokens)
	case c.Overlap < 0:
		return fmt.Errorf("chunk overlap must not be negative, got %d", c.Overlap)
	case c.Overlap > c.MaxTokens/2:
		return fmt.Errorf("chunk overlap (%d) must be at most half the chunk size (%d)", c.Overlap, c.MaxTokens)
	}
	return nil
}

// TokenCounter counts the word pieces of a text, special tokens excluded.
type TokenCounter func(text string) (int, error)

// Span is a chunk's place in its document: text[Start:End], byte offsets.
type Span struct {
	Start, End int
	Tokens     int
	// Truncated marks a chunk that still has more than MaxTokens word
	// pieces: one whitespace-free run of text longer than a chunk.
	Truncated bool
}

// unit is a sentence (or, for an over-long sentence, a run of words) with
// its word-piece count.
type unit struct {
	start, end, tokens int
}

// Split cuts text into chunks of whole sentences of at most c.MaxTokens word
// pieces, packing sentences greedily; a paragraph break (a blank line) always
// ends a sentence. A sentence longer than a chunk is cut between words, and a
// word longer than a chunk (text without spaces) between characters. The
// chunks cover every non-space byte of text in order, and each is a
// substring of text, so an answer can be quoted exactly as written. Each
// chunk's Tokens is counted on the chunk as a whole.
func (c Chunking) Split(text string, count TokenCounter) ([]Span, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !utf8.ValidString(text) {
		return nil, errors.New("text is not valid UTF-8")
	}
	var units []unit
	for _, s := range sentences(text) {
		n, err := count(text[s[0]:s[1]])
		if err != nil {
			return nil, err
		}
		if n <= c.MaxTokens {
			units = append(units, unit{s[0], s[1], n})
			continue
		}
		words, err := c.splitWords(text, s[0], s[1], count)
		if err != nil {
			return nil, err
		}
		units = append(units, words...)
	}
	var spans []Span
	for i := 0; i < len(units); {
		j, tokens := i, 0
		for j < len(units) && (j == i || tokens+units[j].tokens <= c.MaxTokens) {
			tokens += units[j].tokens
			j++
		}
		// Word pieces add up across separators, which the tokenizer splits
		// on too; counting the chunk whole makes sure of it.
		sp := Span{Start: units[i].start, End: units[j-1].end}
		n, err := count(text[sp.Start:sp.End])
		if err != nil {
			return nil, err
		}
		sp.Tokens = n
		sp.Truncated = sp.Tokens > c.MaxTokens
		spans = append(spans, sp)
		if j == len(units) {
			break
		}
		// The next chunk starts with as many of this chunk's last units as
		// fit in the overlap and leave room for the next new unit, and
		// always moves forward by at least one.
		next, carried := j, 0
		for next-1 > i && carried+units[next-1].tokens <= c.Overlap &&
			carried+units[next-1].tokens+units[j].tokens <= c.MaxTokens {
			next--
			carried += units[next].tokens
		}
		i = next
	}
	return spans, nil
}

// splitWords cuts text[start:end] between whitespace-separated words into
// runs of at most MaxTokens word pieces.
func (c Chunking) splitWords(text string, start, end int, count TokenCounter) ([]unit, error) {
	var out []unit
	cur := unit{start: -1}
	var words [][2]int
	for _, w := range fields(text, start, end) {
		n, err := count(text[w[0]:w[1]])
		if err != nil {
			return nil, err
		}
		if n <= c.MaxTokens {
			words = append(words, w)
			continue
		}
		pieces, err := c.splitRunes(text, w[0], w[1], count)
		if err != nil {
			return nil, err
		}
		words = append(words, pieces...)
	}
	for _, w := range words {
		n, err := count(text[w[0]:w[1]])
		if err != nil {
			return nil, err
		}
		if cur.start >= 0 && cur.tokens+n > c.MaxTokens {
			out = append(out, cur)
			cur = unit{start: -1}
		}
		if cur.start < 0 {
			cur.start = w[0]
		}
		cur.end = w[1]
		cur.tokens += n
	}
	if cur.start >= 0 {
		out = append(out, cur)
	}
	return out, nil
}

// splitRunes cuts a word longer than a chunk into the longest runs of
// characters that fit, found by doubling then bisecting the run length.
// No word piece is longer than one character, so a run of MaxTokens
// characters always fits.
func (c Chunking) splitRunes(text string, start, end int, count TokenCounter) ([][2]int, error) {
	var bounds []int // byte offset of each rune, then end
	for i := range text[start:end] {
		bounds = append(bounds, start+i)
	}
	bounds = append(bounds, end)
	runes := len(bounds) - 1
	fits := func(from, n int) (bool, error) {
		k, err := count(text[bounds[from]:bounds[from+n]])
		return k <= c.MaxTokens, err
	}
	var out [][2]int
	for from := 0; from < runes; {
		good := min(c.MaxTokens, runes-from)
		bad := -1 // smallest length known not to fit
		for bad < 0 && good < runes-from {
			n := min(2*good, runes-from)
			ok, err := fits(from, n)
			if err != nil {
				return nil, err
			}
			if ok {
				good = n
			} else {
				bad = n
			}
		}
		for bad > good+1 {
			mid := (good + bad) / 2
			ok, err := fits(from, mid)
			if err != nil {
				return nil, err
			}
			if ok {
				good = mid
			} else {
				bad = mid
			}
		}
		out = append(out, [2]int{bounds[from], bounds[from+good]})
		from += good
	}
	return out, nil
}

// isSeparator reports the spaces the BERT tokenizer splits words at: tab,
// newline, carriage return and the Unicode spaces that are not control
// characters. \f, \v and U+0085 are control characters, which it deletes,
// so the words around them run together and must not be split there.
func isSeparator(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r) && !unicode.IsControl(r)
}

// sentences returns the byte ranges of text's sentences, without the
// whitespace between them. A sentence ends at a blank line (a paragraph
// break), after ., ! or ? (and any closing quotes or brackets) followed by
// whitespace, or after 。, ！ or ？ (which need no space after them).
func sentences(text string) [][2]int {
	var out [][2]int
	start := -1
	end := 0 // end of the last non-space rune seen
	newlines := 0
	for i, r := range text {
		if isSeparator(r) {
			if r == '\n' {
				newlines++
				if newlines >= 2 && start >= 0 {
					out = append(out, [2]int{start, end})
					start = -1
				}
			}
			continue
		}
		newlines = 0
		if start < 0 {
			start = i
		} else if end < i && sentenceEnd(text[start:end]) || end == i && fullWidthEnd(text[start:end]) && !closing(r) {
			out = append(out, [2]int{start, end})
			start = i
		}
		end = i + utf8.RuneLen(r)
	}
	if start >= 0 {
		out = append(out, [2]int{start, end})
	}
	return out
}

// sentenceEnd reports whether s ends a sentence: terminal punctuation,
// possibly followed by closing quotes or brackets.
func sentenceEnd(s string) bool {
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		switch {
		case closing(r):
			s = s[:len(s)-size]
			continue
		case r == '.' || r == '!' || r == '?' || isFullWidthEnd(r):
			return true
		}
		return false
	}
	return false
}

// fullWidthEnd reports whether s ends in 。, ！ or ？, possibly followed by
// closing quotes or brackets.
func fullWidthEnd(s string) bool {
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if closing(r) {
			s = s[:len(s)-size]
			continue
		}
		return isFullWidthEnd(r)
	}
	return false
}

func isFullWidthEnd(r rune) bool { return r == '。' || r == '！' || r == '？' }

// closing reports quotes and brackets that may follow a sentence's end.
func closing(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '»', '”', '’', '」', '』', '）':
		return true
	}
	return false
}

// fields returns the byte ranges of the whitespace-separated words of
// text[start:end].
func fields(text string, start, end int) [][2]int {
	var out [][2]int
	w := -1
	for i, r := range text[start:end] {
		if isSeparator(r) {
			if w >= 0 {
				out = append(out, [2]int{start + w, start + i})
				w = -1
			}
		} else if w < 0 {
			w = i
		}
	}
	if w >= 0 {
		out = append(out, [2]int{start + w, end})
	}
	return out
}
