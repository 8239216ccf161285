// Package doclinks checks the repository's Markdown: every relative link in
// README.md and docs/*.md must name a file that exists and, when it has a
// fragment, a heading of that file (GitHub's anchor rules).
package doclinks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Link is one link found in a Markdown file.
type Link struct {
	File   string // the file the link is in
	Line   int    // 1-based
	Target string // as written
}

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(\S+)`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	heading    = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// Links returns the links of a Markdown file outside code blocks and code
// spans.
func Links(path string) ([]Link, error) {
	var out []Link
	err := eachProseLine(path, func(n int, line string) {
		if m := refLink.FindStringSubmatch(line); m != nil {
			out = append(out, Link{File: path, Line: n, Target: m[1]})
			return
		}
		for _, m := range inlineLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			out = append(out, Link{File: path, Line: n, Target: m[1]})
		}
	})
	return out, err
}

// Anchors returns the fragments a Markdown file's headings (and explicit
// HTML anchors) can be linked by, as GitHub makes them.
func Anchors(path string) (map[string]bool, error) {
	seen := map[string]int{}
	out := map[string]bool{}
	err := eachProseLine(path, func(_ int, line string) {
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			return
		}
		slug := Slug(m[2])
		if k := seen[slug]; k > 0 {
			out[fmt.Sprintf("%s-%d", slug, k)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	})
	return out, err
}

// Slug is GitHub's anchor for a heading's text: lower case, Markdown
// links reduced to their text, every character but letters, digits,
// spaces, hyphens and underscores dropped, spaces turned into hyphens.
func Slug(text string) string {
	text = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(text, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// Check returns one message per broken relative link in files.
func Check(files []string) ([]string, error) {
	var bad []string
	anchors := map[string]map[string]bool{}
	for _, f := range files {
		links, err := Links(f)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			t := l.Target
			if strings.Contains(t, "://") || strings.HasPrefix(t, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(t, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), path)
				if _, err := os.Stat(target); err != nil {
					bad = append(bad, fmt.Sprintf("%s:%d: %s: no such file", l.File, l.Line, t))
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			a, ok := anchors[target]
			if !ok {
				if a, err = Anchors(target); err != nil {
					return nil, err
				}
				anchors[target] = a
			}
			if !a[frag] {
				bad = append(bad, fmt.Sprintf("%s:%d: %s: no heading with anchor #%s in %s", l.File, l.Line, t, frag, target))
			}
		}
	}
	return bad, nil
}

// eachProseLine calls fn for every line outside fenced code blocks.
func eachProseLine(path string, fn func(n int, line string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	fence := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trim, fence) && strings.Trim(trim, fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~") {
			fence = trim[:3]
			for _, c := range trim[3:] {
				if c != rune(fence[0]) {
					break
				}
				fence += string(c)
			}
			continue
		}
		fn(n, line)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

var (
	headerTarget = regexp.MustCompile(`(?m)^#\s+make ([a-z][a-z0-9-]*)`)
	headerExtra  = regexp.MustCompile(`(?m)^#.*?[;(]\s*(?:make )?([a-z][a-z0-9-]*):`)
	makeRule     = regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*)\s*:`)
	layoutRow    = regexp.MustCompile("(?m)^\\|[^|]*`make [^|]*\\|")
	layoutTarget = regexp.MustCompile("`make ([a-z][a-z0-9-]*)")
)

// MakeHeaderTargets returns the targets the Makefile's leading comment
// lists ("#   make X ..." lines, and "make Y:" inside them).
func MakeHeaderTargets(makefile string) []string {
	end := strings.Index(makefile, "\n\n\n")
	if i := strings.Index(makefile, "\nSHELL"); i >= 0 && (end < 0 || i < end) {
		end = i
	}
	if end < 0 {
		end = len(makefile)
	}
	head := makefile[:end]
	var out []string
	for _, m := range headerTarget.FindAllStringSubmatch(head, -1) {
		out = append(out, m[1])
	}
	for _, m := range headerExtra.FindAllStringSubmatch(head, -1) {
		out = append(out, m[1])
	}
	return out
}

// MakeRules returns the names of the Makefile's rules.
func MakeRules(makefile string) map[string]bool {
	out := map[string]bool{}
	for _, m := range makeRule.FindAllStringSubmatch(makefile, -1) {
		out[m[1]] = true
	}
	return out
}

// LayoutTargets returns the targets named in the first cell of the rows of
// docs/layout.md's make table.
func LayoutTargets(page string) map[string]bool {
	out := map[string]bool{}
	for _, row := range layoutRow.FindAllString(page, -1) {
		first := strings.SplitN(strings.TrimPrefix(row, "|"), "|", 2)[0]
		for _, m := range layoutTarget.FindAllStringSubmatch(first, -1) {
			out[m[1]] = true
		}
	}
	return out
}
