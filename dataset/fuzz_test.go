package dataset

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkParsed holds for every successful Parse: the rules it promises.
func checkParsed(t *testing.T, pairs []Pair, err error) {
	t.Helper()
	if err != nil {
		if len(pairs) != 0 {
			t.Fatalf("pairs returned with error %v", err)
		}
		return
	}
	if len(pairs) < 2 {
		t.Fatalf("%d pairs without error", len(pairs))
	}
	for i, p := range pairs {
		for _, s := range append([]string{p.Anchor, p.Positive}, p.Negatives...) {
			if !utf8.ValidString(s) || strings.TrimSpace(s) == "" {
				t.Fatalf("pair %d has a bad text %q", i, s)
			}
		}
		if len(p.Negatives) != len(pairs[0].Negatives) {
			t.Fatalf("ragged negatives accepted")
		}
	}
}

// roundTrip checks that what Parse accepted survives Write and Parse again.
func roundTrip(t *testing.T, pairs []Pair, f Format) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, pairs, f); err != nil {
		t.Fatal(err)
	}
	again, err := Parse(&buf, f)
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	for i := range pairs {
		want := pairs[i]
		if f == FormatCSV {
			// encoding/csv reads "\r\n" inside a quoted field as "\n".
			crlf := strings.NewReplacer("\r\n", "\n")
			want = Pair{Anchor: crlf.Replace(want.Anchor), Positive: crlf.Replace(want.Positive)}
			for _, n := range pairs[i].Negatives {
				want.Negatives = append(want.Negatives, crlf.Replace(n))
			}
		}
		if !want.equal(again[i]) {
			t.Fatalf("pair %d: %q became %q", i, pairs[i], again[i])
		}
	}
}

func FuzzParseJSONL(f *testing.F) {
	f.Add(`{"anchor":"a","positive":"b"}` + "\n" + `{"anchor":"c","positive":"d"}`)
	f.Add(`{"question":"a","answer":"b","id":1}` + "\n" + `{"question":"c","answer":"d"}`)
	f.Add(`{"anchor":"a","positive":"b","negative":"n","negative_1":"m"}` + "\n" + `{"anchor":"c","positive":"d","negatives":["x","y"]}`)
	f.Add(`{"anchor":"a","positive":1}`)
	f.Add("{\"anchor\":\"\xff\"}\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		pairs, err := Parse(strings.NewReader(in), FormatJSONL)
		checkParsed(t, pairs, err)
		var pe *ParseError
		if err != nil && !errors.Is(err, ErrNoPairs) && !errors.Is(err, ErrTooFewPairs) && !errors.As(err, &pe) {
			t.Fatalf("error without a line: %v", err)
		}
		if err == nil {
			roundTrip(t, pairs, FormatJSONL)
			roundTrip(t, pairs, FormatJSON)
		}
	})
}

func FuzzParseCSV(f *testing.F) {
	f.Add("anchor,positive\na,b\nc,d\n")
	f.Add("Question,Answer,id\n\"a, b\",c,1\nd,\"e\"\"\",2\n")
	f.Add("sentence1,sentence2,negative_2,negative\na,b,c,d\ne,f,g,h\n")
	f.Add("anchor,positive\na,b\n\"c,d\n")
	f.Add("anchor,positive\n\"a\r\nb\",c\r\nd,e\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		pairs, err := Parse(strings.NewReader(in), FormatCSV)
		checkParsed(t, pairs, err)
		if err == nil {
			roundTrip(t, pairs, FormatCSV)
		}
	})
}

func FuzzParseFAQ(f *testing.F) {
	f.Add(debianSample, "")
	f.Add(markdownSample, "markdown")
	f.Add(rstSample, "rst")
	f.Add("1.1.\u00a0Q?\n\n    A.\n", "debian-text")
	f.Add("Q?\n==\nA\n", "auto")
	f.Fuzz(func(t *testing.T, doc, format string) {
		entries, err := ParseFAQ(strings.NewReader(doc), FAQOptions{Format: format, IDPrefix: "f-"})
		if err != nil {
			return
		}
		if len(entries) == 0 {
			t.Fatal("no entries without error")
		}
		for _, e := range entries {
			if e.Question == "" || e.Answer == "" || !isQuestion(e.Question) || fold(e.Answer) != e.Answer || fold(e.Question) != e.Question {
				t.Fatalf("bad entry %+v", e)
			}
		}
		var buf bytes.Buffer
		if err := WriteJSONL(&buf, entries); err != nil {
			t.Fatal(err)
		}
	})
}
