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
	case c.Overlap >= c.MaxTokens:
		return fmt.Errorf("chunk overlap (%d) must be smaller than the chunk size (%d)", c.Overlap, c.MaxTokens)
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
// pieces. Paragraphs (blank-line separated) and sentences are kept whole
// where they fit; a sentence longer than a chunk is cut between words. The
// chunks cover every non-space byte of text in order, and each is a
// substring of text, so an answer can be quoted exactly as written.
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
		spans = append(spans, Span{Start: units[i].start, End: units[j-1].end, Tokens: tokens, Truncated: tokens > c.MaxTokens})
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
	for _, w := range fields(text, start, end) {
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

// sentences returns the byte ranges of text's sentences, without the
// whitespace between them. A sentence ends at a blank line (a paragraph
// break) or after ., ! or ? (and any closing quotes or brackets) followed
// by whitespace.
func sentences(text string) [][2]int {
	var out [][2]int
	start := -1
	end := 0 // end of the last non-space rune seen
	newlines := 0
	for i, r := range text {
		if unicode.IsSpace(r) {
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
		} else if end < i && sentenceEnd(text[start:end]) {
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
		switch r {
		case '"', '\'', ')', ']', '»', '”', '’':
			s = s[:len(s)-size]
			continue
		case '.', '!', '?', '。', '！', '？':
			return true
		}
		return false
	}
	return false
}

// fields returns the byte ranges of the whitespace-separated words of
// text[start:end].
func fields(text string, start, end int) [][2]int {
	var out [][2]int
	w := -1
	for i, r := range text[start:end] {
		if unicode.IsSpace(r) {
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
