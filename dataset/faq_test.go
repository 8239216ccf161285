package dataset

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nbsp = "\u00A0"

// debianSample imitates debian-faq.en.txt: a table of contents with plain
// spaces, NBSP after heading numbers, wrapped headings, sub-headings that are
// not questions and a footnote block after a rule.
var debianSample = strings.Join([]string{
	"Table of Contents",
	"",
	"1. Basics",
	"    1.1. What is it?",
	"    1.2. How does it work? A long question that",
	"    wraps?",
	"",
	"Chapter" + nbsp + "1." + nbsp + "Basics",
	"",
	"1.1." + nbsp + "What is it?",
	"",
	"    It is a" + nbsp + nbsp + "thing.",
	"",
	nbsp + " " + nbsp + "  * with a list",
	"",
	"1.2." + nbsp + "How does it work? A long question that",
	"wraps?",
	"",
	"    Like this.^[1]",
	"",
	"1.2.1." + nbsp + "Details",
	"",
	"    Dropped: not a question.",
	"",
	"1.3." + nbsp + "Is this dropped!",
	"",
	"    Yes.",
	"",
	"1.4." + nbsp + "Last one?",
	"",
	"    Ends here.",
	"",
	"",
	"---------------------------------------------------------------------",
	"",
	"    ^[1] A footnote.",
	"",
	"Chapter" + nbsp + "2." + nbsp + "More",
	"",
	"2.1." + nbsp + "Empty?",
	"",
	"2.2." + nbsp + "Again?",
	"    Text right under.",
}, "\n")

func TestParseFAQDebianText(t *testing.T) {
	want := []FAQEntry{
		{ID: "d-1.1", Question: "What is it?", Answer: "It is a thing. * with a list", Section: "1.1"},
		{ID: "d-1.2", Question: "How does it work? A long question that wraps?", Answer: "Like this.^[1]", Section: "1.2"},
		{ID: "d-1.4", Question: "Last one?", Answer: "Ends here.", Section: "1.4"},
		{ID: "d-2.2", Question: "Again?", Answer: "Text right under.", Section: "2.2"},
	}
	for _, format := range []string{"", FAQAuto, FAQDebianText} {
		got, err := ParseFAQ(strings.NewReader(debianSample), FAQOptions{Format: format, IDPrefix: "d-"})
		require.NoError(t, err)
		assert.Equal(t, want, got, "format %q", format)
	}
	// CRLF line ends change nothing.
	got, err := ParseFAQ(strings.NewReader(strings.ReplaceAll(debianSample, "\n", "\r\n")), FAQOptions{IDPrefix: "d-"})
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestParseFAQDebianChapterIntro(t *testing.T) {
	// Chapter lines are not boundaries (as in the reference export).
	doc := "1.1." + nbsp + "Q?\n\n    A.\n\nChapter" + nbsp + "2." + nbsp + "Next\n\n    Intro.\n\n2.1." + nbsp + "R?\n\n    B.\n"
	got, err := ParseFAQ(strings.NewReader(doc), FAQOptions{})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "A. Chapter 2. Next Intro.", got[0].Answer)
}

func TestParseFAQPlainNumberedText(t *testing.T) {
	doc := "1. General\n\n1.1. Why?\n    Because.\n\n1.2. How?\n    So.\n"
	got, err := ParseFAQ(strings.NewReader(doc), FAQOptions{})
	require.NoError(t, err)
	assert.Equal(t, []FAQEntry{
		{ID: "1.1", Question: "Why?", Answer: "Because.", Section: "1.1"},
		{ID: "1.2", Question: "How?", Answer: "So.", Section: "1.2"},
	}, got)
}

const markdownSample = "# Project FAQ\n" +
	"\n" +
	"Intro text is not an answer.\n" +
	"\n" +
	"## Installing\n" +
	"\n" +
	"### How do I install it?\n" +
	"\n" +
	"Run the installer:\n" +
	"\n" +
	"```sh\n" +
	"# not a heading\n" +
	"make   install\n" +
	"```\n" +
	"\n" +
	"#### On macOS\n" +
	"\n" +
	"Use brew.\n" +
	"\n" +
	"#### Does it work offline?\n" +
	"\n" +
	"Yes.\n" +
	"\n" +
	"### Where are the files? ###\n" +
	"\n" +
	"In `/usr/share`.\n" +
	"\n" +
	"### Is this question unanswered?\n" +
	"\n" +
	"## Usage\n" +
	"\n" +
	"## Why is it slow?\n" +
	"It is not.\n" +
	"#hashtag is text\n" +
	"    # indented code is text too\n" +
	"\n" +
	"# Other\n" +
	"\n" +
	"Unrelated.\n"

func TestParseFAQMarkdown(t *testing.T) {
	want := []FAQEntry{
		{ID: "md-1", Question: "How do I install it?", Answer: "Run the installer: # not a heading make install On macOS Use brew.", Section: "Installing"},
		{ID: "md-2", Question: "Does it work offline?", Answer: "Yes.", Section: "Installing"},
		{ID: "md-3", Question: "Where are the files?", Answer: "In `/usr/share`.", Section: "Installing"},
		{ID: "md-4", Question: "Why is it slow?", Answer: "It is not. #hashtag is text # indented code is text too", Section: "Project FAQ"},
	}
	for _, format := range []string{FAQAuto, FAQMarkdown} {
		got, err := ParseFAQ(strings.NewReader(markdownSample), FAQOptions{Format: format, IDPrefix: "md-"})
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
}

func TestParseFAQMarkdownNoSection(t *testing.T) {
	got, err := ParseFAQ(strings.NewReader("## What?\nThat.\n## Who?\nThem.\n"), FAQOptions{})
	require.NoError(t, err)
	assert.Equal(t, []FAQEntry{
		{ID: "1", Question: "What?", Answer: "That.", Section: ""},
		{ID: "2", Question: "Who?", Answer: "Them.", Section: ""},
	}, got)
}

const rstSample = `=========
Tool FAQ
=========

Some preface.

General
=======

What is Tool?
-------------

Tool is a tool.
It has two lines.

Sub topic
~~~~~~~~~

Kept in the answer.

Is it free?
-----------

Yes::

    literal text

----

After a transition.

Usage
=====

How do I run it?
^^^^^^^^^^^^^^^^^^^^^

Call ` + "`tool`" + `.

Short underline?
---

Not a heading, so part of the answer above.
`

func TestParseFAQRST(t *testing.T) {
	want := []FAQEntry{
		{ID: "1", Question: "What is Tool?", Answer: "Tool is a tool. It has two lines. Sub topic Kept in the answer.", Section: "General"},
		{ID: "2", Question: "Is it free?", Answer: "Yes:: literal text After a transition.", Section: "General"},
		{ID: "3", Question: "How do I run it?", Answer: "Call `tool`. Short underline? --- Not a heading, so part of the answer above.", Section: "Usage"},
	}
	for _, format := range []string{FAQAuto, FAQRST} {
		got, err := ParseFAQ(strings.NewReader(rstSample), FAQOptions{Format: format})
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
}

func TestParseFAQErrors(t *testing.T) {
	tests := []struct {
		name, doc, format, want string
	}{
		{"empty", "", FAQAuto, "cannot tell the format"},
		{"no headings", "just text\nmore text\n", FAQAuto, "cannot tell the format"},
		{"no questions", "# Title\n\n## Part\ntext\n", FAQAuto, "no questions found"},
		{"question without answer", "# Why?\n\n# How?\n", FAQMarkdown, "no questions found"},
		{"invalid utf8", "# Q?\nok\n\xff\n", FAQAuto, "line 3: invalid UTF-8"},
		{"unknown format", "# Q?\nA\n", "html", "unknown format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFAQ(strings.NewReader(tc.doc), FAQOptions{Format: tc.format})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadFAQGzipAndExtension(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(debianSample))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	gz := filepath.Join(dir, "faq.txt.gz")
	require.NoError(t, os.WriteFile(gz, buf.Bytes(), 0o644))
	got, err := LoadFAQ(gz, FAQOptions{})
	require.NoError(t, err)
	assert.Len(t, got, 4)

	// Setext headings are not Markdown headings here, but an .rst file with
	// the same text parses as reStructuredText.
	doc := "Why?\n====\n\nBecause.\n"
	rst := filepath.Join(dir, "faq.rst")
	require.NoError(t, os.WriteFile(rst, []byte(doc), 0o644))
	got, err = LoadFAQ(rst, FAQOptions{})
	require.NoError(t, err)
	assert.Equal(t, []FAQEntry{{ID: "1", Question: "Why?", Answer: "Because.", Section: ""}}, got)
	md := filepath.Join(dir, "faq.md")
	require.NoError(t, os.WriteFile(md, []byte(doc), 0o644))
	_, err = LoadFAQ(md, FAQOptions{})
	assert.ErrorContains(t, err, "no questions found")

	_, err = LoadFAQ(filepath.Join(dir, "missing.md"), FAQOptions{})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestFAQPairs(t *testing.T) {
	pairs := FAQPairs([]FAQEntry{{ID: "1", Question: "q", Answer: "a", Section: "s"}})
	assert.Equal(t, []Pair{{Anchor: "q", Positive: "a"}}, pairs)
}

func TestWriteJSONLPythonCompatible(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteJSONL(&buf, []FAQEntry{
		{ID: "x-1", Question: `a "quoted" \ <b>&`, Answer: "tab\tnl\ncr\r\x01\x1f\b\f é “” \u2028", Section: ""},
	}))
	// What Python's json.dumps(obj, ensure_ascii=False) prints.
	want := `{"id": "x-1", "question": "a \"quoted\" \\ <b>&", "answer": "tab\tnl\ncr\r\u0001\u001f\b\f é “” ` + "\u2028" + `", "section": ""}` + "\n"
	assert.Equal(t, want, buf.String())

	// And Load reads it back as question/answer pairs.
	path := filepath.Join(t.TempDir(), "faq.jsonl")
	buf.Reset()
	require.NoError(t, WriteJSONL(&buf, []FAQEntry{{ID: "1", Question: "q1", Answer: "a1"}, {ID: "2", Question: "q2", Answer: "a2"}}))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	pairs, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, []Pair{{Anchor: "q1", Positive: "a1"}, {Anchor: "q2", Positive: "a2"}}, pairs)
}
