package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testData holds the sample datasets (testdata/data/README.md).
var testData = filepath.Join("..", "testdata", "data")

func TestParseBadInput(t *testing.T) {
	two := `{"anchor":"a","positive":"b"}` + "\n" + `{"anchor":"c","positive":"d"}` + "\n"
	tests := []struct {
		name   string
		format Format
		in     string
		want   []string // substrings of the error
		line   int      // ParseError.Line, 0 to skip
		record int      // ParseError.Record for JSON, -1 otherwise
	}{
		// JSONL
		{"jsonl empty file", FormatJSONL, "", []string{"no pairs"}, 0, -1},
		{"jsonl blank lines only", FormatJSONL, "\n  \n\n", []string{"no pairs"}, 0, -1},
		{"jsonl one pair", FormatJSONL, `{"anchor":"a","positive":"b"}`, []string{"at least 2 pairs", "in-batch negatives"}, 0, -1},
		{"jsonl malformed line 3", FormatJSONL, two + `{"anchor":"x",` + "\n", []string{"line 3", "malformed JSON"}, 3, -1},
		{"jsonl trailing garbage", FormatJSONL, two + `{"anchor":"x","positive":"y"} z`, []string{"line 3", "malformed JSON"}, 3, -1},
		{"jsonl not an object", FormatJSONL, two + `["a","b"]`, []string{"line 3", "expected a JSON object"}, 3, -1},
		{"jsonl null row", FormatJSONL, two + `null`, []string{"line 3", "expected a JSON object, got null"}, 3, -1},
		{"jsonl missing positive", FormatJSONL, two + `{"anchor":"x"}`, []string{"line 3", `missing field "positive"`}, 3, -1},
		{"jsonl missing anchor", FormatJSONL, `{"positive":"x"}` + "\n" + two, []string{"line 1", `missing field "anchor"`}, 1, -1},
		{"jsonl missing answer", FormatJSONL, `{"question":"x","id":"7"}` + "\n" + two, []string{"line 1", `missing field "answer"`}, 1, -1},
		{"jsonl no known fields", FormatJSONL, `{"query":"x","doc":"y"}` + "\n" + two, []string{"line 1", "no text fields"}, 1, -1},
		{"jsonl number field", FormatJSONL, two + `{"anchor":"x","positive":3}`, []string{"line 3", `"positive" is not a string (got a number)`}, 3, -1},
		{"jsonl null field", FormatJSONL, two + `{"anchor":null,"positive":"y"}`, []string{"line 3", `"anchor" is not a string (got null)`}, 3, -1},
		{"jsonl empty anchor", FormatJSONL, two + `{"anchor":"","positive":"y"}`, []string{"line 3", `"anchor" is empty`}, 3, -1},
		{"jsonl whitespace positive", FormatJSONL, two + `{"anchor":"x","positive":" \t\n\u00a0"}`, []string{"line 3", `"positive" is empty`}, 3, -1},
		{"jsonl empty negative", FormatJSONL, `{"anchor":"x","positive":"y","negative":" "}`, []string{"line 1", `"negative" is empty`}, 1, -1},
		{"jsonl invalid utf8", FormatJSONL, two + "{\"anchor\":\"caf\xe9\",\"positive\":\"y\"}", []string{"line 3", "invalid UTF-8"}, 3, -1},
		{"jsonl ragged negatives", FormatJSONL,
			`{"anchor":"a","positive":"b","negative":"n"}` + "\n\n" + `{"anchor":"c","positive":"d"}`,
			[]string{"line 3", "0 negatives, but line 1 has 1"}, 3, -1},
		{"jsonl ragged negatives 2 vs 1", FormatJSONL,
			`{"anchor":"a","positive":"b","negative_1":"n","negative_2":"m"}` + "\n" + `{"anchor":"c","positive":"d","negative":"n"}`,
			[]string{"line 2", "1 negatives, but line 1 has 2"}, 2, -1},
		{"jsonl negatives array and columns", FormatJSONL, `{"anchor":"a","positive":"b","negative":"n","negatives":["m"]}`, []string{"line 1", "both"}, 1, -1},
		{"jsonl negatives not strings", FormatJSONL, `{"anchor":"a","positive":"b","negatives":[1]}`, []string{"line 1", "negatives[0]", "not a string"}, 1, -1},
		{"jsonl line too long", FormatJSONL, two + `{"anchor":"` + strings.Repeat("x", MaxLineBytes+10) + `","positive":"y"}`, []string{"line 3", "longer than"}, 3, -1},

		// JSON array
		{"json empty file", FormatJSON, "  \n", []string{"no pairs"}, 0, -1},
		{"json empty array", FormatJSON, "[]", []string{"no pairs"}, 0, -1},
		{"json one pair", FormatJSON, `[{"sentence1":"q","sentence2":"a"}]`, []string{"at least 2 pairs"}, 0, -1},
		{"json not an array", FormatJSON, `{"sentence1":"q","sentence2":"a"}`, []string{"expected a JSON array"}, 1, -1},
		{"json malformed record", FormatJSON, "[\n {\"sentence1\":\"q\",\"sentence2\":\"a\"},\n {\"sentence1\":\"q\",,}\n]",
			[]string{"record 1", "line 3", "malformed JSON"}, 3, 1},
		{"json missing comma", FormatJSON, "[\n {\"sentence1\":\"q\",\"sentence2\":\"a\"}\n {\"sentence1\":\"q\",\"sentence2\":\"a\"}\n]",
			[]string{"record 1", "line 3", "malformed JSON"}, 3, 1},
		{"json truncated", FormatJSON, "[\n {\"sentence1\":\"q\",\"sentence2\":\"a\"},\n {\"sentence1\":\"q\"",
			[]string{"record 1", "malformed JSON"}, 3, 1},
		{"json missing sentence2", FormatJSON, "[\n{\"sentence1\":\"q\",\"sentence2\":\"a\"},\n{\"sentence1\":\"q\"}]",
			[]string{"record 1", "line 3", `missing field "sentence2"`}, 3, 1},
		{"json record not object", FormatJSON, `[{"sentence1":"q","sentence2":"a"}, "x"]`, []string{"record 1", "expected a JSON object"}, 1, 1},
		{"json empty text", FormatJSON, `[{"question":"q","answer":"a"},{"question":"q","answer":"  "}]`, []string{"record 1", `"answer" is empty`}, 1, 1},
		{"json bool field", FormatJSON, `[{"question":true,"answer":"a"},{"question":"q","answer":"a"}]`, []string{"record 0", `"question" is not a string (got a boolean)`}, 1, 0},
		{"json invalid utf8", FormatJSON, "[\n{\"question\":\"q\",\"answer\":\"a\"},\n{\"question\":\"\xff\",\"answer\":\"a\"}]", []string{"line 3", "invalid UTF-8"}, 3, -1},
		{"json trailing data", FormatJSON, `[{"question":"q","answer":"a"},{"question":"r","answer":"b"}] [`, []string{"data after the array"}, 1, -1},
		{"json ragged negatives", FormatJSON, `[{"anchor":"q","positive":"a","negatives":["n"]},{"anchor":"r","positive":"b"}]`, []string{"record 1", "but record 0 has 1"}, 1, 1},

		// CSV
		{"csv empty file", FormatCSV, "", []string{"no pairs"}, 0, -1},
		{"csv header only", FormatCSV, "anchor,positive\n", []string{"no pairs"}, 0, -1},
		{"csv one pair", FormatCSV, "anchor,positive\na,b\n", []string{"at least 2 pairs"}, 0, -1},
		{"csv unknown header", FormatCSV, "query,doc\na,b\n", []string{"line 1", "no anchor,positive"}, 1, -1},
		{"csv missing column", FormatCSV, "question,id\na,b\n", []string{"line 1", `no "answer" column`}, 1, -1},
		{"csv duplicate column", FormatCSV, "anchor,positive,Anchor\na,b,c\n", []string{"line 1", "twice"}, 1, -1},
		{"csv empty text", FormatCSV, "anchor,positive\na,b\nc,\n", []string{"line 3", `"positive" is empty`}, 3, -1},
		{"csv empty negative", FormatCSV, "anchor,positive,negative\na,b,c\nc,d, \n", []string{"line 3", `"negative" is empty`}, 3, -1},
		{"csv ragged row", FormatCSV, "anchor,positive\na,b\nc,d,e\n", []string{"line 3", "wrong number of fields"}, 3, -1},
		{"csv bad quote", FormatCSV, "anchor,positive\na,b\n\"c,d\n", []string{"line 3"}, 0, -1},
		{"csv invalid utf8", FormatCSV, "anchor,positive\na,b\nc,\xc3\x28\n", []string{"line 3", "not valid UTF-8"}, 3, -1},

		{"unknown format", Format("xml"), "<a/>", []string{"unknown format"}, 0, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pairs, err := Parse(strings.NewReader(tc.in), tc.format)
			require.Error(t, err)
			assert.Nil(t, pairs)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			var pe *ParseError
			if tc.line > 0 {
				require.True(t, errors.As(err, &pe), "want a *ParseError, got %T: %v", err, err)
				assert.Equal(t, tc.line, pe.Line)
				assert.Equal(t, tc.record, pe.Record)
			}
		})
	}
}

func TestParseSentinels(t *testing.T) {
	_, err := Parse(strings.NewReader(""), FormatJSONL)
	assert.ErrorIs(t, err, ErrNoPairs)
	_, err = Parse(strings.NewReader("question,answer\nq,a\n"), FormatCSV)
	assert.ErrorIs(t, err, ErrTooFewPairs)
	assert.Contains(t, err.Error(), "MultipleNegativesRankingLoss needs at least 2 pairs: in-batch negatives")
}

func TestParseAccepts(t *testing.T) {
	want2 := []Pair{{Anchor: "q1", Positive: "a1"}, {Anchor: "q2", Positive: "a2"}}
	tests := []struct {
		name   string
		format Format
		in     string
		want   []Pair
	}{
		{"json sentence1/2", FormatJSON, `[{"sentence1":"q1","sentence2":"a1"},{"sentence1":"q2","sentence2":"a2","extra":[1]}]`, want2},
		{"json question/answer", FormatJSON, "\ufeff[{\"question\":\"q1\",\"answer\":\"a1\"},\n{\"question\":\"q2\",\"answer\":\"a2\"}]", want2},
		{"json anchor/positive", FormatJSON, `[{"anchor":"q1","positive":"a1"},{"anchor":"q2","positive":"a2"}]`, want2},
		{"jsonl question/answer with extras", FormatJSONL, "{\"id\":1,\"question\":\"q1\",\"answer\":\"a1\",\"section\":\"x\"}\r\n\r\n{\"question\":\"q2\",\"answer\":\"a2\"}\n", want2},
		{"jsonl escapes", FormatJSONL, `{"anchor":"q\u00e9\n","positive":"a\"1"}` + "\n" + `{"anchor":"q2","positive":"a2"}`,
			[]Pair{{Anchor: "qé\n", Positive: `a"1`}, {Anchor: "q2", Positive: "a2"}}},
		{"jsonl negative columns in order", FormatJSONL,
			`{"negative_2":"n2","anchor":"q1","negative_10":"n10","positive":"a1","negative":"n0","negative_1":"n1","negative_x":"ignored","negative_01":"ignored"}` + "\n" +
				`{"anchor":"q2","positive":"a2","negative":"m0","negative_1":"m1","negative_2":"m2","negative_10":"m10"}`,
			[]Pair{
				{Anchor: "q1", Positive: "a1", Negatives: []string{"n0", "n1", "n2", "n10"}},
				{Anchor: "q2", Positive: "a2", Negatives: []string{"m0", "m1", "m2", "m10"}},
			}},
		{"jsonl negatives array", FormatJSONL, `{"anchor":"q1","positive":"a1","negatives":["n"]}` + "\n" + `{"anchor":"q2","positive":"a2","negative":"m"}`,
			[]Pair{{Anchor: "q1", Positive: "a1", Negatives: []string{"n"}}, {Anchor: "q2", Positive: "a2", Negatives: []string{"m"}}}},
		{"csv sentence1/2 upper case with BOM", FormatCSV, "\ufeffSentence1, SENTENCE2 ,id\nq1,a1,1\nq2,a2,2\n", want2},
		{"csv question/answer quoted", FormatCSV, "question,answer\n\"q1\",\"a1\"\nq2,a2", want2},
		{"csv negatives", FormatCSV, "anchor,positive,negative_1,negative_2\nq1,a1,x,y\nq2,\"a2, with \"\"comma\"\"\",z,w\n",
			[]Pair{{Anchor: "q1", Positive: "a1", Negatives: []string{"x", "y"}}, {Anchor: "q2", Positive: `a2, with "comma"`, Negatives: []string{"z", "w"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in), tc.format)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRoundTrip(t *testing.T) {
	sets := map[string][]Pair{
		"plain": {
			{Anchor: "What is <b>&</b>?", Positive: "A line\nbreak, a \"quote\", a comma, ünïcödé \u2028 and a tab\t."},
			{Anchor: "q2", Positive: "a2"},
			{Anchor: " leading space kept ", Positive: "\\backslash"},
		},
		"one negative": {
			{Anchor: "q1", Positive: "a1", Negatives: []string{"n1"}},
			{Anchor: "q2", Positive: "a2", Negatives: []string{"n2"}},
		},
		"three negatives": {
			{Anchor: "q1", Positive: "a1", Negatives: []string{"x", "y", "z"}},
			{Anchor: "q2", Positive: "a2", Negatives: []string{"u", "v", "w"}},
		},
	}
	for name, pairs := range sets {
		for _, f := range []Format{FormatJSON, FormatJSONL, FormatCSV} {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				require.NoError(t, Write(&buf, pairs, f))
				got, err := Parse(bytes.NewReader(buf.Bytes()), f)
				require.NoError(t, err, buf.String())
				assert.Equal(t, pairs, got)

				// Load detects the format from the file.
				path := filepath.Join(t.TempDir(), "pairs."+string(f))
				require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
				got, err = Load(path)
				require.NoError(t, err)
				assert.Equal(t, pairs, got)
			})
		}
	}
}

func TestWriteRejectsRagged(t *testing.T) {
	err := Write(&bytes.Buffer{}, []Pair{{Anchor: "a", Positive: "b"}, {Anchor: "c", Positive: "d", Negatives: []string{"e"}}}, FormatJSONL)
	assert.ErrorContains(t, err, "pair 1")
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name, head string
		want       Format
	}{
		{"x.json", "[{}]", FormatJSON},
		{"x.json", `{"a":1}`, FormatJSONL}, // JSONL named .json
		{"x.jsonl", "\ufeff \n{", FormatJSONL},
		{"x.ndjson", "", FormatJSONL},
		{"x.json", "", FormatJSON},
		{"x.csv", "[", FormatCSV},
		{"X.CSV.GZ", "", FormatCSV},
		{"x.txt", "[", FormatJSON},
		{"x", "anchor,positive", FormatCSV},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, DetectFormat(tc.name, []byte(tc.head)), "%s %q", tc.name, tc.head)
	}
}

func TestLoadGzipAndErrors(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte("question,answer\nq1,a1\nq2,a2\n"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	path := filepath.Join(dir, "faq.csv.gz")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	pairs, err := Load(path)
	require.NoError(t, err)
	assert.Len(t, pairs, 2)

	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte(`{"anchor":"a","positive":"b"}`+"\n"+`{"anchor":"a"`), 0o644))
	_, err = Load(bad)
	assert.ErrorContains(t, err, bad+": jsonl: line 2: malformed JSON")

	notGz := filepath.Join(dir, "x.jsonl.gz")
	require.NoError(t, os.WriteFile(notGz, []byte("{}"), 0o644))
	_, err = Load(notGz)
	assert.ErrorContains(t, err, "not gzip")

	_, err = Load(filepath.Join(dir, "missing.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoadSampleDatasets(t *testing.T) {
	pairs, err := Load(filepath.Join(testData, "bedrock-faq-training.json"))
	require.NoError(t, err)
	assert.Len(t, pairs, 85)
	assert.Equal(t, "What is Amazon Bedrock and its key features?", pairs[0].Anchor)
	assert.True(t, strings.HasPrefix(pairs[0].Positive, "Amazon Bedrock is a fully managed service"))

	pairs, err = Load(filepath.Join(testData, "debian-faq.jsonl"))
	require.NoError(t, err)
	assert.Len(t, pairs, 120)
	assert.Equal(t, "What is this FAQ?", pairs[0].Anchor)
}
