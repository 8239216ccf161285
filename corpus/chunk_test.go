package corpus

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
)

// words counts whitespace-separated words: a stand-in tokenizer whose
// counts are easy to check by eye.
func words(s string) (int, error) { return len(strings.Fields(s)), nil }

// checkSpans asserts Split's contract: substrings in order, every non-space
// byte covered, sizes within the limit unless marked truncated, and
// consecutive chunks overlapping by at most the overlap.
func checkSpans(t *testing.T, text string, c Chunking, spans []Span, count TokenCounter) {
	t.Helper()
	covered := make([]bool, len(text))
	for i, s := range spans {
		require.True(t, 0 <= s.Start && s.Start < s.End && s.End <= len(text), "span %d %+v", i, s)
		n, err := count(text[s.Start:s.End])
		require.NoError(t, err)
		assert.Equal(t, n, s.Tokens, "span %d: counted per sentence = counted whole", i)
		assert.Equal(t, s.Tokens > c.MaxTokens, s.Truncated, "span %d", i)
		for j := s.Start; j < s.End; j++ {
			covered[j] = true
		}
		if i > 0 {
			p := spans[i-1]
			assert.Greater(t, s.Start, p.Start, "chunks move forward")
			assert.Greater(t, s.End, p.End, "chunks move forward")
			if s.Start < p.End {
				n, err := count(text[s.Start:p.End])
				require.NoError(t, err)
				assert.LessOrEqual(t, n, c.Overlap, "overlap of spans %d and %d", i-1, i)
			}
		}
	}
	for j, r := range text {
		if !unicode.IsSpace(r) {
			assert.True(t, covered[j], "byte %d (%q) not in any chunk", j, r)
		}
	}
}

func TestSplitKeepsSentencesAndParagraphs(t *testing.T) {
	text := "One two three. Four five six seven.\n\nEight nine? Ten eleven twelve thirteen fourteen."
	c := Chunking{MaxTokens: 7, Overlap: 0}
	spans, err := c.Split(text, words)
	require.NoError(t, err)
	assert.Equal(t, []string{"One two three. Four five six seven.", "Eight nine? Ten eleven twelve thirteen fourteen."}, chunkTexts(text, spans))
	checkSpans(t, text, c, spans, words)

	// A bigger window packs across the paragraph break, text unchanged.
	c = Chunking{MaxTokens: 9}
	spans, err = c.Split(text, words)
	require.NoError(t, err)
	require.Len(t, spans, 2)
	assert.Equal(t, "One two three. Four five six seven.\n\nEight nine?", text[spans[0].Start:spans[0].End])
}

func TestSplitOverlapCarriesWholeSentences(t *testing.T) {
	text := "A b. C d. E f. G h. I j. K l."
	c := Chunking{MaxTokens: 6, Overlap: 2}
	spans, err := c.Split(text, words)
	require.NoError(t, err)
	assert.Equal(t, []string{"A b. C d. E f.", "E f. G h. I j.", "I j. K l."}, chunkTexts(text, spans))
	checkSpans(t, text, c, spans, words)
}

func TestSplitCutsLongSentencesBetweenWords(t *testing.T) {
	text := strings.Repeat("word ", 25) + "end."
	c := Chunking{MaxTokens: 10, Overlap: 3}
	spans, err := c.Split(text, words)
	require.NoError(t, err)
	checkSpans(t, text, c, spans, words)
	for _, s := range spans {
		assert.LessOrEqual(t, s.Tokens, 10)
	}

	// A run of text without spaces longer than a chunk is cut between
	// characters, into the longest runs that fit.
	blob := "x" + strings.Repeat("y", 100)
	// One token per started ten bytes of each word: additive, like WordPiece.
	perTen := func(s string) (int, error) {
		n := 0
		for _, w := range strings.Fields(s) {
			n += (len(w) + 9) / 10
		}
		return n, nil
	}
	c = Chunking{MaxTokens: 3}
	text = "before. " + blob + " after."
	spans, err = c.Split(text, perTen)
	require.NoError(t, err)
	checkSpans(t, text, c, spans, perTen)
	assert.Equal(t, []string{"before.", blob[:30], blob[30:60], blob[60:90], blob[90:] + " after."}, chunkTexts(text, spans))
}

func chunkTexts(text string, spans []Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, text[s.Start:s.End])
	}
	return out
}

// TestSplitWithoutSpaces uses the model's tokenizer on text the BERT
// tokenizer does not split where Go sees spaces, and on Chinese, which has
// no spaces at all.
func TestSplitWithoutSpaces(t *testing.T) {
	count := wordPieces(t)
	c := Chunking{MaxTokens: 20, Overlap: 4}
	zh := strings.Repeat("我们的系统需要一个新的搜索功能。用户可以用中文提问！", 30)
	glued := strings.Repeat("a\fcork a\vblackwell x\u0085corkscrew. ", 20)
	for name, text := range map[string]string{"chinese": zh, "control separators": glued} {
		t.Run(name, func(t *testing.T) {
			spans, err := c.Split(text, count)
			require.NoError(t, err)
			checkSpans(t, text, c, spans, count)
			for _, s := range spans {
				assert.False(t, s.Truncated, "%q", text[s.Start:s.End])
			}
		})
	}
	// 。 and ！ end sentences with no space after them.
	spans, err := Chunking{MaxTokens: 26}.Split(zh[:3*52], count)
	require.NoError(t, err)
	assert.Equal(t, "我们的系统需要一个新的搜索功能。用户可以用中文提问！", zh[spans[0].Start:spans[0].End])
}

func wordPieces(t *testing.T) TokenCounter {
	tok, err := hf.LoadTokenizer(filepath.Join(testmodel.Dir(t), "tokenizer.json"))
	require.NoError(t, err)
	special, err := tok.Tokenize("")
	require.NoError(t, err)
	return func(s string) (int, error) {
		ids, err := tok.Tokenize(s)
		return len(ids) - len(special), err
	}
}

func TestSplitEdgeCases(t *testing.T) {
	for _, text := range []string{"", "   \n\n\t "} {
		spans, err := Chunking{MaxTokens: 5}.Split(text, words)
		require.NoError(t, err)
		assert.Empty(t, spans)
	}
	_, err := Chunking{MaxTokens: 5}.Split("ok \xff", words)
	assert.ErrorContains(t, err, "UTF-8")
	for _, c := range []Chunking{{MaxTokens: 0}, {MaxTokens: 5, Overlap: -1}, {MaxTokens: 5, Overlap: 3}} {
		assert.Error(t, c.Validate(), "%+v", c)
	}
	// Quotes and brackets after the full stop still end the sentence.
	text := `He said "Hi." Then left (quietly.) Done`
	var got []string
	for _, s := range sentences(text) {
		got = append(got, text[s[0]:s[1]])
	}
	assert.Equal(t, []string{`He said "Hi."`, "Then left (quietly.)", "Done"}, got)
}

// TestSplitWithWordPieces checks, with the model's tokenizer, that counting
// sentence by sentence equals counting the chunk whole (so no chunk is cut by
// the encoder), on the Debian FAQ's answers.
func TestSplitWithWordPieces(t *testing.T) {
	count := wordPieces(t)
	c := Chunking{MaxTokens: 126, Overlap: 16}
	long := 0
	for _, text := range faqAnswers(t) {
		spans, err := c.Split(text, count)
		require.NoError(t, err)
		checkSpans(t, text, c, spans, count)
		if len(spans) > 1 {
			long++
		}
	}
	assert.Greater(t, long, 10, "some answers need more than one chunk of 126 word pieces")
}

func FuzzSplit(f *testing.F) {
	f.Add("One two. Three four five.\n\nSix.", 3, 1)
	f.Add("a\u00a0b. c", 1, 0)
	f.Fuzz(func(t *testing.T, text string, max, overlap int) {
		c := Chunking{MaxTokens: max%50 + 1, Overlap: overlap % 25}
		if c.Validate() != nil {
			return
		}
		spans, err := c.Split(text, words)
		if err != nil {
			return
		}
		checkSpans(t, text, c, spans, words)
	})
}
