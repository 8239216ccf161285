package hf

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The goldens of testdata/tokenizers come from HF tokenizers through
// tools/golden/tokenizer_kinds.py (make golden); the real tokenizers they
// were made from are fetched by tools/fetch-tokenizers.sh (make deps).

type tokenizerKind struct {
	Tokenizer    string `json:"tokenizer"`
	SHA256       string `json:"sha256"`
	MaxSeqLength int    `json:"max_seq_length"`
}

type kindsFile struct {
	Version string                   `json:"tokenizers_version"`
	Texts   int                      `json:"texts"`
	Kinds   map[string]tokenizerKind `json:"kinds"`
}

func readKinds(t testing.TB) kindsFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizers", "kinds.json"))
	require.NoError(t, err)
	var k kindsFile
	require.NoError(t, json.Unmarshal(data, &k))
	require.NotEmpty(t, k.Kinds)
	return k
}

// readGzLines decodes every line of a gzipped JSON Lines file into a T.
func readGzLines[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var out []T
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var v T
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "%s line %d", path, len(out)+1)
		out = append(out, v)
	}
	require.NoError(t, sc.Err())
	return out
}

func readCorpus(t testing.TB) []string {
	t.Helper()
	type line struct {
		Text string `json:"text"`
	}
	lines := readGzLines[line](t, filepath.Join("..", "testdata", "tokenizers", "corpus.jsonl.gz"))
	texts := make([]string, len(lines))
	for i, l := range lines {
		texts[i] = l.Text
	}
	return texts
}

// kindTokenizerBytes returns the tokenizer.json of a kind, checking it is
// the file the goldens were made from.
func kindTokenizerBytes(t testing.TB, k tokenizerKind) []byte {
	t.Helper()
	path := filepath.Join("..", filepath.FromSlash(k.Tokenizer))
	data, err := os.ReadFile(path)
	require.NoError(t, err, "run `make deps` (tools/fetch-tokenizers.sh)")
	if filepath.Ext(path) == ".gz" {
		data = gunzip(t, data)
	}
	sum := sha256.Sum256(data)
	require.Equal(t, k.SHA256, hex.EncodeToString(sum[:]), "%s is not the file the goldens were made from", path)
	return data
}

func gunzip(t testing.TB, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return out
}

func loadKind(t testing.TB, name string, k tokenizerKind) *Tokenizer {
	t.Helper()
	data := kindTokenizerBytes(t, k)
	path := filepath.Join(t.TempDir(), name+".json")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	tok, err := LoadTokenizer(path)
	require.NoError(t, err)
	return tok
}

type kindGolden struct {
	IDs []int64 `json:"ids"`
	ST  []int64 `json:"st"`
}

// TestTokenizerKindsGolden: every text of the corpus gives HF's ids, for
// every kind, both untruncated (Tokenize) and as sentence-transformers
// feeds the model (Encode at max_seq_length).
func TestTokenizerKindsGolden(t *testing.T) {
	kinds := readKinds(t)
	texts := readCorpus(t)
	require.Len(t, texts, kinds.Texts)
	require.GreaterOrEqual(t, len(texts), 2000)
	names := make([]string, 0, len(kinds.Kinds))
	for name := range kinds.Kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k := kinds.Kinds[name]
		t.Run(name, func(t *testing.T) {
			tok := loadKind(t, name, k)
			golden := readGzLines[kindGolden](t, filepath.Join("..", "testdata", "tokenizers", name+".jsonl.gz"))
			require.Len(t, golden, len(texts))
			bad := 0
			for i, text := range texts {
				got, err := tok.Tokenize(text)
				require.NoError(t, err, "text %d", i)
				want := golden[i].IDs
				if !slices.Equal(got, want) {
					bad++
					if bad <= 3 {
						t.Errorf("text %d %q:\n got %v\nwant %v", i, clip(text), got, want)
					}
					continue
				}
				st, _, err := tok.Encode(text, k.MaxSeqLength)
				require.NoError(t, err)
				if golden[i].ST != nil {
					want = golden[i].ST
				}
				if !slices.Equal(st, want) {
					bad++
					if bad <= 3 {
						t.Errorf("text %d %q at max_seq_length %d:\n got %v\nwant %v", i, clip(text), k.MaxSeqLength, st, want)
					}
				}
			}
			assert.Zero(t, bad, "%d of %d texts differ", bad, len(texts))
		})
	}
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

// TestLoadTokenizerKindErrors: what the new components refuse, each error
// naming the component and the file.
func TestLoadTokenizerKindErrors(t *testing.T) {
	kinds := readKinds(t)
	src := func(name string) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(kindTokenizerBytes(t, kinds.Kinds[name]), &m))
		return m
	}
	marshal := func(m map[string]any) []byte {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	section := func(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }
	edit := func(name string, f func(m map[string]any)) []byte {
		m := src(name)
		f(m)
		return marshal(m)
	}
	qwen := kindTokenizerBytes(t, kinds.Kinds["qwen-bytelevel-bpe"])
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		data    []byte
		wantMsg string
	}{
		{"truncated BPE file", qwen[:len(qwen)*2/3], "malformed JSON"},
		{"unknown normalizer in a Sequence", edit("bert-st-resaved", func(m map[string]any) {
			section(m, "normalizer")["normalizers"].([]any)[1].(map[string]any)["type"] = "NoSuchNormalizer"
		}), `unsupported normalizer.normalizers[1] type "NoSuchNormalizer"`},
		{"unknown pre-tokenizer in a Sequence", edit("qwen-bytelevel-bpe", func(m map[string]any) {
			section(m, "pre_tokenizer")["pretokenizers"].([]any)[0].(map[string]any)["type"] = "NoSuchSplit"
		}), `unsupported pre_tokenizer.pretokenizers[0] type "NoSuchSplit"`},
		{"unknown post-processor in a Sequence", edit("bpe-suffix-legacy-merges", func(m map[string]any) {
			section(m, "post_processor")["processors"].([]any)[1].(map[string]any)["type"] = "NoSuchProcessor"
		}), `unsupported post_processor.processors[1] type "NoSuchProcessor"`},
		{"component without type", edit("gpt2-bytelevel-bpe", func(m map[string]any) {
			delete(section(m, "pre_tokenizer"), "type")
		}), "pre_tokenizer has no type"},
		{"Unigram vocab without scores", edit("t5-unigram-bytefallback", func(m map[string]any) {
			v := section(m, "model")["vocab"].([]any)
			for i, e := range v {
				v[i] = e.([]any)[0]
			}
		}), "needs scores"},
		{"Unigram unk_id outside the vocab", edit("t5-unigram-bytefallback", func(m map[string]any) {
			section(m, "model")["unk_id"] = 1 << 30
		}), "unk_id 1073741824 is outside the vocab"},
		{"merge naming an unknown token", edit("gpt2-bytelevel-bpe", func(m map[string]any) {
			section(m, "model")["merges"].([]any)[5] = []any{"no-such-token", "e"}
		}), `merges[5] names "no-such-token", which is not in the vocab`},
		{"legacy merge naming an unknown token", edit("bpe-suffix-legacy-merges", func(m map[string]any) {
			section(m, "model")["merges"].([]any)[7] = "qqq##zzz ##x"
		}), `merges[7] names "qqq##zzz"`},
		{"legacy merge with three tokens", edit("bpe-suffix-legacy-merges", func(m map[string]any) {
			section(m, "model")["merges"].([]any)[0] = "a b c"
		}), "merges[0] \"a b c\" is not two tokens"},
		{"BPE dropout", edit("gpt2-bytelevel-bpe", func(m map[string]any) {
			section(m, "model")["dropout"] = 0.1
		}), "dropout 0.1 is not supported"},
		{"bad Split regex", edit("qwen-bytelevel-bpe", func(m map[string]any) {
			section(m, "pre_tokenizer")["pretokenizers"].([]any)[0].(map[string]any)["pattern"] = map[string]any{"Regex": "(unclosed"}
		}), `pattern "(unclosed"`},
		{"unknown split behavior", edit("wordpiece-split-behaviors", func(m map[string]any) {
			section(m, "pre_tokenizer")["pretokenizers"].([]any)[0].(map[string]any)["behavior"] = "Sideways"
		}), `unknown split behavior "Sideways"`},
		{"unknown prepend_scheme", edit("gemma-metaspace-bpe", func(m map[string]any) {
			section(m, "pre_tokenizer")["prepend_scheme"] = "sometimes"
		}), `unknown prepend_scheme "sometimes"`},
		{"truncated charsmap", edit("multilingual-e5-small", func(m map[string]any) {
			section(m, "normalizer")["normalizers"].([]any)[0].(map[string]any)["precompiled_charsmap"] = "AAAB"
		}), "precompiled_charsmap"},
		{"template token not in the vocab", edit("qwen-bytelevel-bpe", func(m map[string]any) {
			pp := section(m, "post_processor")["processors"].([]any)[1].(map[string]any)
			pp["special_tokens"].(map[string]any)["<|endoftext|>"].(map[string]any)["ids"] = []any{1 << 30}
		}), "id 1073741824 is not in the vocabulary"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".json")
			require.NoError(t, os.WriteFile(path, c.data, 0o644))
			tok, err := LoadTokenizer(path)
			require.Error(t, err)
			assert.Nil(t, tok)
			assert.Contains(t, err.Error(), c.wantMsg)
			assert.Contains(t, err.Error(), path, "the error names the file")
		})
	}
}

// TestTokenizerKindsRefuseInvalidUTF8: every kind refuses bad bytes the
// same way the BERT path does, and stays usable after.
func TestTokenizerKindsRefuseInvalidUTF8(t *testing.T) {
	kinds := readKinds(t)
	for _, name := range []string{"gpt2-bytelevel-bpe", "multilingual-e5-small", "t5-unigram-bytefallback", "bert-st-resaved"} {
		tok := loadKind(t, name, kinds.Kinds[name])
		for _, text := range []string{"ab\xffcd", "\xc3", "ok \xed\xa0\x80 surrogate"} {
			ids, err := tok.Tokenize(text)
			require.ErrorIs(t, err, ErrInvalidUTF8, name)
			assert.Nil(t, ids)
			_, _, err = tok.Encode(text, 16)
			require.ErrorIs(t, err, ErrInvalidUTF8, name)
		}
		ids, err := tok.Tokenize("still fine")
		require.NoError(t, err)
		assert.NotEmpty(t, ids)
	}
}

// FuzzTokenizeKinds: any text through every pipeline kind gives ids inside
// the vocabulary, or ErrInvalidUTF8, never a panic.
func FuzzTokenizeKinds(f *testing.F) {
	kinds := readKinds(f)
	var toks []*Tokenizer
	for _, name := range []string{"gpt2-bytelevel-bpe", "qwen-bytelevel-bpe", "llama-sp-bpe", "gemma-metaspace-bpe",
		"modernbert-bytelevel-bpe", "t5-unigram-bytefallback", "wordpiece-nfd-punct-digits",
		"wordpiece-split-behaviors", "bpe-suffix-legacy-merges", "bert-st-resaved"} {
		toks = append(toks, loadKind(f, name, kinds.Kinds[name]))
	}
	for i, text := range readCorpus(f) {
		if i%7 == 0 && len(text) < 500 {
			f.Add(text)
		}
	}
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, text string) {
		for _, tok := range toks {
			ids, err := tok.Tokenize(text)
			if !utf8.ValidString(text) {
				if !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("invalid UTF-8 %q: err %v", text, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%q: %v", text, err)
			}
			for _, id := range ids {
				if id < 0 || id >= int64(tok.VocabSize()) || tok.TokenString(id) == "" {
					t.Fatalf("%q: id %d is not a token", text, id)
				}
			}
		}
	})
}

// BenchmarkTokenizerKinds tokenizes the golden corpus with each kind;
// tools/golden/run.sh bench-tokenizers times HF tokenizers on the same.
func BenchmarkTokenizerKinds(b *testing.B) {
	kinds := readKinds(b)
	texts := readCorpus(b)
	var size int64
	for _, s := range texts {
		size += int64(len(s))
	}
	names := make([]string, 0, len(kinds.Kinds))
	for name := range kinds.Kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tok := loadKind(b, name, kinds.Kinds[name])
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				for _, s := range texts {
					if _, err := tok.Tokenize(s); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
		})
	}
}
