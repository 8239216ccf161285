package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FAQEntry is one question of an FAQ document with its answer.
// Its JSON form (keys in this order) is that of shared/data/debian-faq.jsonl.
type FAQEntry struct {
	ID       string `json:"id"`
	Question string `json:"question"`
	Answer   string `json:"answer"`
	Section  string `json:"section"`
}

// FAQ formats accepted by FAQOptions.Format.
const (
	FAQAuto       = "auto"
	FAQDebianText = "debian-text"
	FAQMarkdown   = "markdown"
	FAQRST        = "rst"
)

// FAQOptions configures ParseFAQ.
type FAQOptions struct {
	// Format is "auto" (or ""), "debian-text", "markdown" or "rst".
	Format string
	// IDPrefix is prepended verbatim to every ID ("debian-" gives "debian-1.1").
	IDPrefix string
}

// LoadFAQ reads an FAQ file, gunzipping it when it is gzip (.gz or magic
// bytes). With Format "auto" a .md/.markdown or .rst extension decides before
// the content does.
func LoadFAQ(path string, opts FAQOptions) ([]FAQEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, name, err := openMaybeGzip(f, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if opts.Format == "" || opts.Format == FAQAuto {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".md", ".markdown":
			opts.Format = FAQMarkdown
		case ".rst":
			opts.Format = FAQRST
		}
	}
	entries, err := ParseFAQ(r, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return entries, nil
}

// ParseFAQ builds question/answer entries from an FAQ document whose
// headings are questions: a heading counts as a question when it ends in a
// question mark. Answers and questions are whitespace-folded (every run of
// white space, NBSP included, becomes one space); Markdown or RST markup in
// them is kept as written. Questions without answer text are dropped.
func ParseFAQ(r io.Reader, opts FAQOptions) ([]FAQEntry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if i := invalidUTF8At(data); i >= 0 {
		return nil, fmt.Errorf("faq: line %d: invalid UTF-8", lineAt(data, i))
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	lines := strings.Split(text, "\n")
	format := opts.Format
	if format == "" || format == FAQAuto {
		if format, err = detectFAQFormat(lines); err != nil {
			return nil, err
		}
	}
	var entries []FAQEntry
	switch format {
	case FAQDebianText:
		entries = parseDebianText(lines, opts.IDPrefix)
	case FAQMarkdown:
		entries = entriesFromOutline(markdownOutline(lines), opts.IDPrefix)
	case FAQRST:
		entries = entriesFromOutline(rstOutline(lines), opts.IDPrefix)
	default:
		return nil, fmt.Errorf("faq: unknown format %q (want auto, debian-text, markdown or rst)", format)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("faq: %s: no questions found (headings ending in \"?\" followed by text)", format)
	}
	return entries, nil
}

// FAQPairs turns entries into training pairs: question as anchor, answer as
// positive.
func FAQPairs(entries []FAQEntry) []Pair {
	out := make([]Pair, len(entries))
	for i, e := range entries {
		out[i] = Pair{Anchor: e.Question, Positive: e.Answer}
	}
	return out
}

// WriteJSONL writes one entry per line exactly as Python's
// json.dumps(entry, ensure_ascii=False) does, so that a file written here is
// byte-identical to one exported by the Python tooling.
func WriteJSONL(w io.Writer, entries []FAQEntry) error {
	bw := bufio.NewWriter(w)
	for _, e := range entries {
		bw.WriteString(`{"id": `)
		writePyString(bw, e.ID)
		bw.WriteString(`, "question": `)
		writePyString(bw, e.Question)
		bw.WriteString(`, "answer": `)
		writePyString(bw, e.Answer)
		bw.WriteString(`, "section": `)
		writePyString(bw, e.Section)
		bw.WriteString("}\n")
	}
	return bw.Flush()
}

// writePyString writes s as a JSON string the way Python's json module does
// with ensure_ascii=False: only '"', '\\' and C0 controls are escaped, and
// not <, >, & or U+2028 as encoding/json would.
func writePyString(w *bufio.Writer, s string) {
	w.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			w.WriteString("\uFFFD")
		case r == '"':
			w.WriteString(`\"`)
		case r == '\\':
			w.WriteString(`\\`)
		case r == '\n':
			w.WriteString(`\n`)
		case r == '\r':
			w.WriteString(`\r`)
		case r == '\t':
			w.WriteString(`\t`)
		case r == '\b':
			w.WriteString(`\b`)
		case r == '\f':
			w.WriteString(`\f`)
		case r < 0x20:
			fmt.Fprintf(w, `\u%04x`, r)
		default:
			w.WriteString(s[i : i+n])
		}
		i += n
	}
	w.WriteByte('"')
}

// fold collapses every run of Unicode white space (NBSP included) into one
// space and trims the ends.
func fold(s string) string { return strings.Join(strings.Fields(s), " ") }

func isQuestion(title string) bool {
	r, _ := utf8.DecodeLastRuneInString(title)
	return r == '?' || r == '\uFF1F' || r == '\u061F' // ASCII, fullwidth, Arabic
}

func isBlank(line string) bool { return strings.TrimSpace(line) == "" }

func isIndented(line string) bool {
	r, _ := utf8.DecodeRuneInString(line)
	return r == ' ' || r == '\t' || r == '\u00A0'
}

func detectFAQFormat(lines []string) (string, error) {
	numberedSpace := false
	for _, l := range lines {
		if _, _, sep, ok := numberedHeading(l); ok {
			if sep == '\u00A0' {
				// docbook's text output puts NBSP after heading numbers;
				// nothing else does, so this is the surest sign.
				return FAQDebianText, nil
			}
			numberedSpace = true
		}
	}
	for _, l := range lines {
		// Column 0 only: "# comment" lines in indented code are not headings.
		if level, _, ok := atxHeading(l); ok && l[0] == '#' && level > 0 {
			return FAQMarkdown, nil
		}
	}
	for _, it := range rstOutline(lines) {
		if it.heading {
			return FAQRST, nil
		}
	}
	if numberedSpace {
		return FAQDebianText, nil
	}
	return "", errors.New("faq: cannot tell the format (no numbered, Markdown or reStructuredText headings); set FAQOptions.Format")
}

// numberedHeading parses a heading such as "1.2.3.<NBSP>Title?" that starts
// in column 0, returning the number without its final dot and the separator
// that follows it (NBSP or space).
func numberedHeading(line string) (num, title string, sep rune, ok bool) {
	i := 0
	for {
		start := i
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			i++
		}
		if i == start || i-start > 4 || i >= len(line) || line[i] != '.' {
			return "", "", 0, false
		}
		i++
		if i < len(line) && line[i] >= '0' && line[i] <= '9' {
			continue
		}
		break
	}
	sep, _ = utf8.DecodeRuneInString(line[i:])
	if sep != ' ' && sep != '\u00A0' {
		return "", "", 0, false
	}
	title = strings.TrimSpace(line[i:])
	if title == "" {
		return "", "", 0, false
	}
	return line[:i-1], title, sep, true
}

// isRule reports a separator line such as the row of dashes that docbook's
// text output puts before a chapter's footnotes.
func isRule(line string) bool {
	line = strings.TrimRight(line, " \t")
	if len(line) < 10 || strings.IndexByte("-=_*", line[0]) < 0 {
		return false
	}
	return strings.Count(line, line[:1]) == len(line)
}

// parseDebianText reads the plain-text rendering of a DocBook FAQ such as
// Debian's debian-faq.en.txt: headings start in column 0 with a section
// number ("3.1.2.<NBSP>Will there be ...?"), may wrap onto further
// unindented lines up to a blank line, and body text is indented.
//
// Every numbered heading ends the answer before it, question or not, so a
// sub-heading like "8.1.1. dpkg" cuts 8.1's answer short. A rule line ends
// it too: what follows is the chapter's footnotes. "Chapter N. Title" lines
// are not boundaries, so a chapter's title and introduction land in the
// previous chapter's last answer; shared/data/debian-faq.jsonl, the
// reference this reproduces, does the same. ID and Section are the number.
func parseDebianText(lines []string, prefix string) []FAQEntry {
	var (
		out  []FAQEntry
		cur  *FAQEntry
		body []string
	)
	flush := func() {
		if cur != nil {
			if cur.Answer = fold(strings.Join(body, "\n")); cur.Answer != "" {
				out = append(out, *cur)
			}
		}
		cur, body = nil, nil
	}
	for i := 0; i < len(lines); i++ {
		num, title, _, ok := numberedHeading(lines[i])
		if ok {
			flush()
			for i+1 < len(lines) && !isBlank(lines[i+1]) && !isIndented(lines[i+1]) && !isRule(lines[i+1]) {
				if _, _, _, next := numberedHeading(lines[i+1]); next {
					break
				}
				i++
				title += "\n" + lines[i]
			}
			if title = fold(title); isQuestion(title) {
				cur = &FAQEntry{ID: prefix + num, Question: title, Section: num}
			}
			continue
		}
		if isRule(lines[i]) {
			flush()
			continue
		}
		if cur != nil {
			body = append(body, lines[i])
		}
	}
	flush()
	return out
}

// outlineItem is a heading or a line of body text of a Markdown or
// reStructuredText document.
type outlineItem struct {
	heading bool
	level   int // 1 is the top level
	text    string
}

// entriesFromOutline turns headings ending in "?" into entries. The answer
// is the text up to the next heading of the same or a higher level, or the
// next question heading of any level (so a nested question is not also part
// of its parent's answer); non-question sub-headings are kept as answer
// text. Section is the nearest enclosing heading that is not a question. IDs
// number the entries from 1.
func entriesFromOutline(items []outlineItem, prefix string) []FAQEntry {
	var (
		out   []FAQEntry
		stack []outlineItem // the headings enclosing the current position
	)
	for i, it := range items {
		if !it.heading {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].level >= it.level {
			stack = stack[:len(stack)-1]
		}
		section := ""
		for j := len(stack) - 1; j >= 0; j-- {
			if !isQuestion(fold(stack[j].text)) {
				section = fold(stack[j].text)
				break
			}
		}
		stack = append(stack, it)
		q := fold(it.text)
		if !isQuestion(q) {
			continue
		}
		var body []string
		for _, next := range items[i+1:] {
			if next.heading && (next.level <= it.level || isQuestion(fold(next.text))) {
				break
			}
			body = append(body, next.text)
		}
		answer := fold(strings.Join(body, "\n"))
		if answer == "" {
			continue
		}
		out = append(out, FAQEntry{ID: prefix + strconv.Itoa(len(out)+1), Question: q, Answer: answer, Section: section})
	}
	return out
}

// atxHeading parses a Markdown "## Title ##" heading (CommonMark: up to three
// spaces of indent, 1-6 '#', then a space or the line's end).
func atxHeading(line string) (level int, title string, ok bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return 0, "", false
	}
	for level < len(s) && s[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || (level < len(s) && s[level] != ' ' && s[level] != '\t') {
		return 0, "", false
	}
	title = strings.TrimSpace(s[level:])
	// An optional closing run of '#' needs a space before it.
	if t := strings.TrimRight(title, "#"); t == "" || strings.HasSuffix(t, " ") || strings.HasSuffix(t, "\t") {
		title = strings.TrimSpace(t)
	}
	return level, title, true
}

// codeFence returns the fence run ("```" or "~~~~") opening or closing a
// fenced code block, or "".
func codeFence(line string) string {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 || len(s) < 3 || (s[0] != '`' && s[0] != '~') {
		return ""
	}
	n := 0
	for n < len(s) && s[n] == s[0] {
		n++
	}
	if n < 3 {
		return ""
	}
	return s[:n]
}

func markdownOutline(lines []string) []outlineItem {
	var (
		items []outlineItem
		fence string // the open fence, "" outside code
	)
	for _, l := range lines {
		if fence != "" {
			// A closing fence is the same character, at least as long, alone.
			if f := codeFence(l); f != "" && f[0] == fence[0] && len(f) >= len(fence) && isBlank(strings.TrimLeft(l, " ")[len(f):]) {
				fence = ""
				continue
			}
			items = append(items, outlineItem{text: l})
			continue
		}
		if f := codeFence(l); f != "" {
			fence = f
			continue
		}
		if level, title, ok := atxHeading(l); ok {
			items = append(items, outlineItem{heading: true, level: level, text: title})
			continue
		}
		items = append(items, outlineItem{text: l})
	}
	return items
}

// rstAdornment reports whether line is a run of one punctuation character
// that reStructuredText uses to adorn section titles, and its length.
func rstAdornment(line string) (ch byte, n int, ok bool) {
	s := strings.TrimRight(line, " \t")
	if len(s) < 2 || strings.IndexByte("=-~^\"*+#", s[0]) < 0 {
		return 0, 0, false
	}
	if strings.Count(s, s[:1]) != len(s) {
		return 0, 0, false
	}
	return s[0], len(s), true
}

// rstOutline finds section titles: a line underlined (and optionally
// overlined) by an adornment at least as long as the title. As in docutils,
// levels are given by the order in which adornment styles first appear.
func rstOutline(lines []string) []outlineItem {
	type style struct {
		ch   byte
		over bool
	}
	levels := map[style]int{}
	level := func(s style) int {
		if l, ok := levels[s]; ok {
			return l
		}
		levels[s] = len(levels) + 1
		return levels[s]
	}
	var items []outlineItem
	prevBlank := true // start of input, or the previous line was blank or a title
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if ch, n, ok := rstAdornment(l); ok && i+2 < len(lines) && !isBlank(lines[i+1]) {
			title := strings.TrimSpace(lines[i+1])
			if _, _, adorn := rstAdornment(lines[i+1]); !adorn {
				if ch2, n2, ok2 := rstAdornment(lines[i+2]); ok2 && ch2 == ch && utf8.RuneCountInString(title) <= min(n, n2) {
					items = append(items, outlineItem{heading: true, level: level(style{ch, true}), text: title})
					i += 2
					prevBlank = true
					continue
				}
			}
		}
		if prevBlank && !isBlank(l) && !isIndented(l) && i+1 < len(lines) {
			if _, _, adorn := rstAdornment(l); !adorn {
				title := strings.TrimSpace(l)
				if ch, n, ok := rstAdornment(lines[i+1]); ok && n >= utf8.RuneCountInString(title) {
					items = append(items, outlineItem{heading: true, level: level(style{ch, false}), text: title})
					i++
					prevBlank = true
					continue
				}
			}
		}
		prevBlank = isBlank(l)
		if _, n, ok := rstAdornment(l); ok && n >= 4 {
			continue // a transition: a visual break, not text
		}
		items = append(items, outlineItem{text: l})
	}
	return items
}
