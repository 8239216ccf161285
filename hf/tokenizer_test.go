package hf

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenizerJSONPath honours EMBTUNE_MODEL like the model tests do.
func tokenizerJSONPath(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EMBTUNE_MODEL")
	if dir == "" {
		dir = filepath.Join("..", "third_party", "models", "all-MiniLM-L6-v2")
	}
	path := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("tokenizer.json missing (run `make deps`): %v", err)
	}
	return path
}

var (
	tokOnce      sync.Once
	tokShared    *Tokenizer
	tokSharedErr error
)

func testTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	path := tokenizerJSONPath(t)
	tokOnce.Do(func() { tokShared, tokSharedErr = LoadTokenizer(path) })
	require.NoError(t, tokSharedErr)
	return tokShared
}

type tokGoldenLine struct {
	Text  string  `json:"text"`
	HFIDs []int64 `json:"hf_ids"`
	IDs   []int64 `json:"ids"`
}

func readTokGolden(t testing.TB) []tokGoldenLine {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "golden", "tokens.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var lines []tokGoldenLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var l tokGoldenLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "line %d", len(lines)+1)
		lines = append(lines, l)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, lines)
	return lines
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// firstDiff describes where two id lists part, to keep failure output short.
func firstDiff(got, want []int64) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	window := func(s []int64) []int64 { return s[max(0, i-2):min(len(s), i+4)] }
	return fmt.Sprintf("len got %d want %d; from index %d got %v want %v", len(got), len(want), i, window(got), window(want))
}

func TestTokenizerGolden(t *testing.T) {
	tok := testTokenizer(t)
	lines := readTokGolden(t)
	var hfBad, stBad int
	var diffs []string
	for n, l := range lines {
		got, err := tok.Tokenize(l.Text)
		require.NoError(t, err, "line %d", n+1)
		if !equalIDs(got, l.HFIDs) {
			hfBad++
			if len(diffs) < 5 {
				diffs = append(diffs, fmt.Sprintf("line %d Tokenize(%.60q): %s", n+1, l.Text, firstDiff(got, l.HFIDs)))
			}
		}
		enc, truncated, err := tok.Encode(l.Text, 256)
		require.NoError(t, err, "line %d", n+1)
		if !equalIDs(enc, l.IDs) || truncated != (len(l.HFIDs) > 256) {
			stBad++
			if len(diffs) < 5 {
				diffs = append(diffs, fmt.Sprintf("line %d Encode(%.60q, 256) truncated=%v: %s", n+1, l.Text, truncated, firstDiff(enc, l.IDs)))
			}
		}
	}
	t.Logf("%d lines: Tokenize mismatches %d, Encode mismatches %d", len(lines), hfBad, stBad)
	assert.Zero(t, hfBad+stBad, "mismatches:\n%s", strings.Join(diffs, "\n"))
}

// TestTokenizerCases pins behaviour probed with HF tokenizers 0.23.3,
// including characters whose Unicode category changed after Unicode 8.0.
func TestTokenizerCases(t *testing.T) {
	tok := testTokenizer(t)
	cases := []struct {
		name, text string
		want       []int64
	}{
		{"empty", "", []int64{101, 102}},
		{"whitespace only", " \t\n\u3000 ", []int64{101, 102}},
		{"special tokens inline, raw match only", "Hello [MASK] world [mask] [SEP][CLS]", []int64{101, 7592, 103, 2088, 1031, 7308, 1033, 102, 101, 102}},
		{"special token glued to words", "abc[MASK]def", []int64{101, 5925, 103, 13366, 102}},
		{"dotted capital I", "\u0130stanbul", []int64{101, 9960, 102}},
		{"unicode spaces split", "a\u00a0b\u3000c\u2028d", []int64{101, 1037, 1038, 1039, 1040, 102}},
		{"controls removed, not split", "a\vb\fc\u0085d\x1ce\x00f\ufffdg", []int64{101, 5925, 3207, 2546, 2290, 102}},
		{"format chars removed", "a\u200bb\u00adc\ufeffd", []int64{101, 5925, 2094, 102}},
		{"CJK spaced", "中文文本", []int64{101, 1746, 1861, 1861, 1876, 102}},
		{"fullwidth not folded", "ＡＢｃ", []int64{101, 100, 102}},
		{"combining accent stripped", "cafe\u0301", []int64{101, 7668, 102}},
		{"ligature kept", "\ufb01ne", []int64{101, 1984, 2638, 102}},
		{"punctuation isolated", "don't stop!!", []int64{101, 2123, 1005, 1056, 2644, 999, 999, 102}},
		{"ascii symbols are punctuation", "+3=8 ^_^ |~", []int64{101, 1009, 1017, 1027, 1022, 1034, 1035, 1034, 1064, 1066, 102}},
		{"unassigned kept", "\u0378", []int64{101, 100, 102}},
		{"100 chars is a word", strings.Repeat("x", 100), append(append([]int64{101, 22038}, repeatID(20348, 49)...), 102)},
		{"101 chars is UNK", strings.Repeat("x", 101), []int64{101, 100, 102}},
		// Unicode 9+ punctuation is not punctuation to HF.
		{"U+2E43 not punct", "a\u2e43b", []int64{101, 100, 102}},
		// Po in Unicode 8, So since 12.
		{"U+166D punct", "a\u166db", []int64{101, 1037, 100, 1038, 102}},
		// Mn in Unicode 8, Mc since 14: stripped.
		{"U+1734 stripped", "a\u1734b", []int64{101, 11113, 102}},
		// Cf since Unicode 14: kept.
		{"U+0890 kept", "a\u0890b", []int64{101, 100, 102}},
		// Lo in Unicode 8, Mn since 9: kept.
		{"U+1885 kept", "a\u1885b", []int64{101, 100, 102}},
		// HF's CJK table starts this block at U+2B920, not U+2B820.
		{"U+2B820 not CJK", "\U0002B820a", []int64{101, 100, 102}},
		{"U+2B920 CJK", "\U0002B920a", []int64{101, 100, 1037, 102}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tok.Tokenize(c.text)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func repeatID(id int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = id
	}
	return s
}

func TestTokenizerLowercaseMatchesRust(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"A", "a"}, {"\u0130", "i\u0307"}, {"\u03a3", "\u03c3"}, {"\u01c5", "\u01c6"},
		{"\ua7cb", "\u0264"}, {"\U00010d50", "\U00010d70"}, {"\U00016ea0", "\U00016ebb"},
	} {
		var got []byte
		for _, r := range c.in {
			got = appendLower(got, r)
		}
		assert.Equal(t, c.want, string(got), "%+q", c.in)
	}
}

func TestTokenizerAccentsStripped(t *testing.T) {
	tok := testTokenizer(t)
	accented, err := tok.Tokenize("naïve résumé")
	require.NoError(t, err)
	plain, err := tok.Tokenize("naive resume")
	require.NoError(t, err)
	assert.Equal(t, plain, accented)
	assert.Equal(t, []int64{101, 15743, 13746, 102}, plain)
}

func TestTokenizerVocab(t *testing.T) {
	tok := testTokenizer(t)
	assert.Equal(t, 30522, tok.VocabSize())
	assert.Equal(t, int64(0), tok.PadID())
	assert.Equal(t, "[CLS]", tok.TokenString(101))
	assert.Equal(t, "[MASK]", tok.TokenString(103))
	assert.Equal(t, "##ne", tok.TokenString(2638))
	assert.Equal(t, "", tok.TokenString(-1))
	assert.Equal(t, "", tok.TokenString(30522))
}

func TestTokenizerEncodeTruncation(t *testing.T) {
	tok := testTokenizer(t)
	full, err := tok.Tokenize("one two three four")
	require.NoError(t, err)
	require.Len(t, full, 6)

	ids, truncated, err := tok.Encode("  one two three four \x1f", 6)
	require.NoError(t, err)
	assert.False(t, truncated)
	assert.Equal(t, full, ids)

	ids, truncated, err = tok.Encode("one two three four", 4)
	require.NoError(t, err)
	assert.True(t, truncated)
	assert.Equal(t, []int64{101, full[1], full[2], 102}, ids)

	ids, truncated, err = tok.Encode("one", 2)
	require.NoError(t, err)
	assert.True(t, truncated)
	assert.Equal(t, []int64{101, 102}, ids)

	ids, truncated, err = tok.Encode(" \u00a0\u2003 ", 2)
	require.NoError(t, err)
	assert.False(t, truncated)
	assert.Equal(t, []int64{101, 102}, ids)
}

func TestTokenizerBadInputs(t *testing.T) {
	tok := testTokenizer(t)
	for _, c := range []struct {
		name, text string
		maxLen     int
		invalid    bool
	}{
		{"lone continuation byte", "abc\x80", 256, true},
		{"0xff", "\xff", 256, true},
		{"truncated sequence", "中\xe4\xb8", 256, true},
		{"overlong slash", "\xc0\xaf", 256, true},
		{"encoded surrogate", "\xed\xa0\x80", 256, true},
		{"maxLen 1", "hello", 1, false},
		{"maxLen 0", "hello", 0, false},
		{"maxLen negative", "", -5, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.invalid {
				ids, err := tok.Tokenize(c.text)
				require.ErrorIs(t, err, ErrInvalidUTF8)
				assert.Nil(t, ids)
			}
			ids, truncated, err := tok.Encode(c.text, c.maxLen)
			require.Error(t, err)
			assert.Equal(t, c.invalid, errors.Is(err, ErrInvalidUTF8))
			assert.Nil(t, ids)
			assert.False(t, truncated)
		})
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	src, err := os.ReadFile(tokenizerJSONPath(t))
	require.NoError(t, err)
	// edited returns the real tokenizer.json with one change applied.
	edited := func(edit func(m map[string]any)) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(src, &m))
		edit(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	section := func(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		data    []byte // nil: file absent
		wantIs  error
		wantMsg string
	}{
		{"missing file", nil, fs.ErrNotExist, "no such file"},
		{"truncated JSON", src[:len(src)/2], nil, "malformed JSON"},
		{"not JSON", []byte("<html>"), nil, "malformed JSON"},
		{"unknown normalizer", edited(func(m map[string]any) { section(m, "normalizer")["type"] = "NoSuchNormalizer" }), nil, `unsupported normalizer type "NoSuchNormalizer"`},
		{"unknown pre_tokenizer", edited(func(m map[string]any) { section(m, "pre_tokenizer")["type"] = "NoSuchPreTokenizer" }), nil, `unsupported pre_tokenizer type "NoSuchPreTokenizer"`},
		{"unknown model", edited(func(m map[string]any) { section(m, "model")["type"] = "NoSuchModel" }), nil, `unsupported model type "NoSuchModel"`},
		{"unk not in vocab", edited(func(m map[string]any) { section(m, "model")["unk_token"] = "<unk>" }), nil, `unk_token "<unk>"`},
		{"empty vocab", edited(func(m map[string]any) { section(m, "model")["vocab"] = map[string]any{} }), nil, "vocab is empty"},
		{"unknown post_processor", edited(func(m map[string]any) { section(m, "post_processor")["type"] = "NoSuchPostProcessor" }), nil, `unsupported post_processor type "NoSuchPostProcessor"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".json")
			if c.data != nil {
				require.NoError(t, os.WriteFile(path, c.data, 0o644))
			}
			tok, err := LoadTokenizer(path)
			require.Error(t, err)
			assert.Nil(t, tok)
			if c.wantIs != nil {
				assert.ErrorIs(t, err, c.wantIs)
			}
			assert.Contains(t, err.Error(), c.wantMsg)
			assert.Contains(t, err.Error(), path, "the error names the file")
		})
	}
}

func TestTokenizerConcurrentUse(t *testing.T) {
	tok := testTokenizer(t)
	lines := readTokGolden(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range lines {
				l := lines[(i+g*53)%len(lines)]
				got, err := tok.Tokenize(l.Text)
				if err != nil || !equalIDs(got, l.HFIDs) {
					errs <- fmt.Sprintf("goroutine %d: %.40q differs (err %v)", g, l.Text, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkTokenize(b *testing.B) {
	tok := testTokenizer(b)
	lines := readTokGolden(b)
	var size int64
	for _, l := range lines {
		size += int64(len(l.Text))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			if _, err := tok.Tokenize(l.Text); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "texts/s")
}
