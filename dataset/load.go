package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format names an on-disk layout of pairs.
type Format string

const (
	// FormatJSON is one JSON array of objects, e.g. the AWS Bedrock sample
	// [{"sentence1": q, "sentence2": a}, ...].
	FormatJSON Format = "json"
	// FormatJSONL is one JSON object per line.
	FormatJSONL Format = "jsonl"
	// FormatCSV is comma-separated values with a header row.
	FormatCSV Format = "csv"
)

// MaxLineBytes bounds one JSONL line, so a file without newlines cannot make
// the scanner buffer grow without limit.
const MaxLineBytes = 16 << 20

var (
	// ErrNoPairs is returned for input that holds no pair at all.
	ErrNoPairs = errors.New("no pairs")
	// ErrTooFewPairs is returned for a single pair: MultipleNegativesRankingLoss
	// scores each anchor against the other positives of its batch, so one pair
	// gives a constant zero loss and nothing to learn.
	ErrTooFewPairs = errors.New("MultipleNegativesRankingLoss needs at least 2 pairs: in-batch negatives")
)

// ParseError locates bad input. Line is 1-based (0 when unknown); Record is
// the 0-based index inside a JSON array (-1 for other formats).
type ParseError struct {
	Format Format
	Line   int
	Record int
	Err    error
}

func (e *ParseError) Error() string {
	switch {
	case e.Record >= 0 && e.Line > 0:
		return fmt.Sprintf("%s: record %d (line %d): %v", e.Format, e.Record, e.Line, e.Err)
	case e.Record >= 0:
		return fmt.Sprintf("%s: record %d: %v", e.Format, e.Record, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("%s: line %d: %v", e.Format, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Format, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Load reads pairs from path. A .gz file is gunzipped first. The format comes
// from the extension (.json, .jsonl/.ndjson, .csv) and the first bytes: '['
// is a JSON array and '{' is JSONL whatever the extension, because JSONL
// files are often named .json.
func Load(path string) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, name, err := openMaybeGzip(f, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4096) // a short or empty file is fine: we sniff what there is
	pairs, err := Parse(br, DetectFormat(name, head))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pairs, nil
}

// DetectFormat picks a format from a file name and the first bytes of its
// content. A .csv extension wins; otherwise the first non-blank byte decides
// ('[' JSON, '{' JSONL); otherwise the extension; CSV is the fallback.
func DetectFormat(name string, head []byte) Format {
	ext := strings.ToLower(filepath.Ext(strings.TrimSuffix(strings.ToLower(name), ".gz")))
	if ext == ".csv" {
		return FormatCSV
	}
	head = bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")
	if len(head) > 0 {
		switch head[0] {
		case '[':
			return FormatJSON
		case '{':
			return FormatJSONL
		}
	}
	switch ext {
	case ".json":
		return FormatJSON
	case ".jsonl", ".ndjson":
		return FormatJSONL
	}
	return FormatCSV
}

// openMaybeGzip returns a reader over the decompressed content when the file
// is gzip (by name or magic bytes), and the name without its .gz suffix.
func openMaybeGzip(r io.Reader, name string) (io.Reader, string, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(2)
	gz := bytes.Equal(magic, []byte{0x1f, 0x8b})
	if strings.HasSuffix(strings.ToLower(name), ".gz") {
		name = name[:len(name)-3]
		if !gz {
			return nil, name, errors.New("named .gz but not gzip data")
		}
	}
	if !gz {
		return br, name, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, name, fmt.Errorf("gzip: %w", err)
	}
	return zr, name, nil
}

// Parse reads pairs in the given format and checks them: every text is valid
// UTF-8 and not blank, all rows have the same number of negatives, and there
// are at least 2 pairs.
func Parse(r io.Reader, format Format) ([]Pair, error) {
	var (
		pairs []Pair
		err   error
	)
	switch format {
	case FormatJSON:
		pairs, err = parseJSONArray(r)
	case FormatJSONL:
		pairs, err = parseJSONL(r)
	case FormatCSV:
		pairs, err = parseCSV(r)
	default:
		return nil, fmt.Errorf("dataset: unknown format %q (want %q, %q or %q)", format, FormatJSON, FormatJSONL, FormatCSV)
	}
	if err != nil {
		return nil, err
	}
	switch len(pairs) {
	case 0:
		return nil, fmt.Errorf("%s: %w", format, ErrNoPairs)
	case 1:
		return nil, fmt.Errorf("%s: only 1 pair: %w", format, ErrTooFewPairs)
	}
	return pairs, nil
}

// rectangular enforces one negative count for all rows: sentence-transformers
// takes every column after the first two as a negative, so a dataset (and a
// batch) must have the same columns in every row.
type rectangular struct {
	n     int // negatives in the first row, -1 before it
	where string
}

func (r *rectangular) check(p Pair, where string) error {
	if r.n < 0 {
		r.n, r.where = len(p.Negatives), where
		return nil
	}
	if len(p.Negatives) != r.n {
		return fmt.Errorf("%d negatives, but %s has %d: every row needs the same number of negatives", len(p.Negatives), r.where, r.n)
	}
	return nil
}

// textColumns are the accepted (anchor, positive) column names, in order of
// preference: sentence-transformers' anchor/positive, plain question/answer
// and the sentence1/sentence2 of the AWS samples.
var textColumns = [][2]string{
	{"anchor", "positive"},
	{"question", "answer"},
	{"sentence1", "sentence2"},
}

// negativeIndex orders hard-negative columns the way sentence-transformers
// datasets name them: "negative" first, then "negative_1", "negative_2", ...
func negativeIndex(name string) (int, bool) {
	if name == "negative" {
		return 0, true
	}
	s, ok := strings.CutPrefix(name, "negative_")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// negativeColumns returns the hard-negative names among names, in order.
func negativeColumns(names []string) []string {
	type col struct {
		name string
		idx  int
	}
	var cols []col
	for _, n := range names {
		if i, ok := negativeIndex(n); ok {
			cols = append(cols, col{n, i})
		}
	}
	sort.Slice(cols, func(a, b int) bool { return cols[a].idx < cols[b].idx })
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("field %q is not valid UTF-8", field)
	}
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("field %q is empty", field)
	}
	return nil
}

// pairFromObject decodes one JSON object. Unknown keys are ignored so that
// files with extra metadata (id, section, ...) load as they are.
func pairFromObject(raw []byte) (Pair, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Pair{}, fmt.Errorf("expected a JSON object, got %s", jsonKind(bytes.TrimSpace(raw)))
		}
		return Pair{}, fmt.Errorf("malformed JSON: %v", err)
	}
	if m == nil {
		return Pair{}, errors.New("expected a JSON object, got null")
	}
	var cols [2]string
	found := false
	for _, c := range textColumns {
		if _, ok := m[c[0]]; ok {
			cols, found = c, true
		} else if _, ok := m[c[1]]; ok {
			cols, found = c, true
		}
		if found {
			break
		}
	}
	if !found {
		return Pair{}, errors.New("no text fields: want anchor/positive, question/answer or sentence1/sentence2")
	}
	var p Pair
	var err error
	if p.Anchor, err = jsonText(m, cols[0]); err != nil {
		return Pair{}, err
	}
	if p.Positive, err = jsonText(m, cols[1]); err != nil {
		return Pair{}, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for _, k := range negativeColumns(keys) {
		s, err := jsonText(m, k)
		if err != nil {
			return Pair{}, err
		}
		p.Negatives = append(p.Negatives, s)
	}
	// "negatives" as an array is how Pair itself marshals.
	if raw, ok := m["negatives"]; ok && string(raw) != "null" {
		if len(p.Negatives) > 0 {
			return Pair{}, errors.New(`both a "negatives" array and negative columns`)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return Pair{}, fmt.Errorf(`field "negatives" is not an array of strings`)
		}
		for i, it := range items {
			s, err := jsonText(map[string]json.RawMessage{"": it}, "")
			if err != nil {
				return Pair{}, fmt.Errorf("negatives[%d]: %v", i, strings.TrimPrefix(err.Error(), `field "" `))
			}
			p.Negatives = append(p.Negatives, s)
		}
	}
	return p, nil
}

// jsonText returns field key of m as a non-blank string.
func jsonText(m map[string]json.RawMessage, key string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", fmt.Errorf("missing field %q", key)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("field %q is not a string (got %s)", key, jsonKind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("field %q: %v", key, err)
	}
	return s, checkText(key, s)
}

func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

func parseJSONL(r io.Reader) ([]Pair, error) {
	sc := bufio.NewScanner(r)
	// +2 leaves room for the line's own "\r\n".
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes+2)
	var (
		pairs []Pair
		rect  = rectangular{n: -1}
		line  int
	)
	fail := func(err error) error { return &ParseError{Format: FormatJSONL, Line: line, Record: -1, Err: err} }
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			b = bytes.TrimPrefix(b, utf8BOM)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue // blank lines, often a trailing one, carry no row
		}
		if !utf8.Valid(b) {
			return nil, fail(fmt.Errorf("invalid UTF-8 at byte %d", invalidUTF8At(b)+1))
		}
		p, err := pairFromObject(b)
		if err != nil {
			return nil, fail(err)
		}
		if err := rect.check(p, fmt.Sprintf("line %d", line)); err != nil {
			return nil, fail(err)
		}
		pairs = append(pairs, p)
	}
	if err := sc.Err(); err != nil {
		line++
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail(fmt.Errorf("line longer than %d bytes", MaxLineBytes))
		}
		return nil, fail(err)
	}
	return pairs, nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

func parseJSONArray(r io.Reader) ([]Pair, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	fail := func(rec, off int, err error) error {
		return &ParseError{Format: FormatJSON, Line: lineAt(data, off), Record: rec, Err: err}
	}
	if i := invalidUTF8At(data); i >= 0 {
		return nil, fail(-1, i, errors.New("invalid UTF-8"))
	}
	// syntaxAt finds where a syntax error is, as the Decoder does not say.
	// If the value at start is whole, the fault is right at start (a missing
	// comma, say); otherwise Unmarshal, which validates before decoding,
	// gives the offset of the first bad byte.
	syntaxAt := func(rec, start int, err error) error {
		var raw json.RawMessage
		if json.NewDecoder(bytes.NewReader(data[start:])).Decode(&raw) == nil {
			return fail(rec, start, fmt.Errorf("malformed JSON: %v", err))
		}
		var v any
		var se *json.SyntaxError
		if e := json.Unmarshal(data[start:], &v); errors.As(e, &se) {
			return fail(rec, start+int(se.Offset)-1, fmt.Errorf("malformed JSON: %v", se))
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fail(rec, len(data), errors.New("malformed JSON: unexpected end of input"))
		}
		return fail(rec, start, fmt.Errorf("malformed JSON: %v", err))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxAt(-1, 0, err)
	}
	if tok != json.Delim('[') {
		return nil, fail(-1, 0, errors.New("expected a JSON array of objects"))
	}
	var (
		pairs []Pair
		rect  = rectangular{n: -1}
	)
	for rec := 0; dec.More(); rec++ {
		start := int(dec.InputOffset())
		for start < len(data) && strings.IndexByte(" \t\r\n,", data[start]) >= 0 {
			start++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxAt(rec, start, err)
		}
		p, err := pairFromObject(raw)
		if err != nil {
			return nil, fail(rec, start, err)
		}
		if err := rect.check(p, fmt.Sprintf("record %d", rec)); err != nil {
			return nil, fail(rec, start, err)
		}
		pairs = append(pairs, p)
	}
	end := int(dec.InputOffset())
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, syntaxAt(-1, end, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fail(-1, int(dec.InputOffset()), errors.New("malformed JSON: data after the array"))
	}
	return pairs, nil
}

func parseCSV(r io.Reader) ([]Pair, error) {
	cr := csv.NewReader(r)
	fail := func(line int, err error) error {
		return &ParseError{Format: FormatCSV, Line: line, Record: -1, Err: err}
	}
	csvErr := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fail(pe.Line, pe.Err)
		}
		return fail(0, err)
	}
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, csvErr(err)
	}
	names := make([]string, len(header))
	col := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, string(utf8BOM))
		}
		if !utf8.ValidString(h) {
			return nil, fail(1, fmt.Errorf("header column %d is not valid UTF-8", i+1))
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; dup && h != "" {
			return nil, fail(1, fmt.Errorf("header names column %q twice", h))
		}
		names[i], col[h] = h, i
	}
	var cols [2]string
	found := false
	for _, c := range textColumns {
		_, a := col[c[0]]
		_, b := col[c[1]]
		if a || b {
			if !a || !b {
				missing := c[0]
				if a {
					missing = c[1]
				}
				return nil, fail(1, fmt.Errorf("header has no %q column", missing))
			}
			cols, found = c, true
			break
		}
	}
	if !found {
		return nil, fail(1, fmt.Errorf("header %q has no anchor,positive or question,answer or sentence1,sentence2 columns", strings.Join(header, ",")))
	}
	negs := negativeColumns(names)
	var pairs []Pair
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvErr(err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) (string, error) {
			s := rec[col[name]]
			return s, checkText(name, s)
		}
		var p Pair
		if p.Anchor, err = get(cols[0]); err != nil {
			return nil, fail(line, err)
		}
		if p.Positive, err = get(cols[1]); err != nil {
			return nil, fail(line, err)
		}
		for _, n := range negs {
			s, err := get(n)
			if err != nil {
				return nil, fail(line, err)
			}
			p.Negatives = append(p.Negatives, s)
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

// negativeNames are the column names Write uses: "negative" for a single hard
// negative and negative_1..negative_n for more, as sentence-transformers'
// published datasets do.
func negativeNames(n int) []string {
	if n == 1 {
		return []string{"negative"}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = "negative_" + strconv.Itoa(i+1)
	}
	return out
}

// Write stores pairs in format with anchor/positive[/negative...] columns,
// which Parse reads back unchanged, except that CSV gives "\r\n" inside a
// text back as "\n" (encoding/csv's reading). All pairs must have the same
// number of negatives.
func Write(w io.Writer, pairs []Pair, format Format) error {
	rect := rectangular{n: -1}
	for i, p := range pairs {
		if err := rect.check(p, fmt.Sprintf("pair %d", i)); err != nil {
			return fmt.Errorf("dataset: pair %d: %w", i, err)
		}
	}
	negs := negativeNames(max(rect.n, 0))
	bw := bufio.NewWriter(w)
	switch format {
	case FormatJSONL, FormatJSON:
		if format == FormatJSON {
			bw.WriteString("[\n")
		}
		for i, p := range pairs {
			if format == FormatJSON {
				bw.WriteString("  ")
			}
			bw.WriteString(`{"anchor": `)
			writePyString(bw, p.Anchor)
			bw.WriteString(`, "positive": `)
			writePyString(bw, p.Positive)
			for j, n := range p.Negatives {
				bw.WriteString(`, "` + negs[j] + `": `)
				writePyString(bw, n)
			}
			bw.WriteString("}")
			if format == FormatJSON && i < len(pairs)-1 {
				bw.WriteString(",")
			}
			bw.WriteString("\n")
		}
		if format == FormatJSON {
			bw.WriteString("]\n")
		}
	case FormatCSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(append([]string{"anchor", "positive"}, negs...)); err != nil {
			return err
		}
		for _, p := range pairs {
			if err := cw.Write(append([]string{p.Anchor, p.Positive}, p.Negatives...)); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("dataset: unknown format %q", format)
	}
	return bw.Flush()
}
