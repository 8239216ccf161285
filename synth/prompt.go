package synth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultSystem is the system message of every request.
const DefaultSystem = "You write search questions for a retrieval dataset. You answer with JSON only."

// DefaultPrompt is the user message; {n} is the number of questions and
// {chunk} the chunk's text. A prompt file replaces it and must contain both.
const DefaultPrompt = `Here is a passage from a document.

"""
{chunk}
"""

Write {n} different questions that someone might type into a search box and that this passage answers. Write the questions in the language of the passage. Each question must make sense on its own, without the passage, and must not copy a sentence of it.

Answer with a JSON object only, of the form {"questions": ["...", "..."]}, holding exactly {n} questions.`

// Prompt renders the user message for a chunk.
type Prompt struct {
	System   string
	Template string
}

// LoadPrompt reads a prompt template file ("" gives DefaultPrompt).
func LoadPrompt(path string) (Prompt, error) {
	p := Prompt{System: DefaultSystem, Template: DefaultPrompt}
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("prompt: %w", err)
	}
	if !utf8.Valid(b) {
		return p, fmt.Errorf("prompt %s: not valid UTF-8", path)
	}
	p.Template = string(b)
	if !strings.Contains(p.Template, "{chunk}") {
		return p, fmt.Errorf("prompt %s: no {chunk} placeholder for the chunk's text", path)
	}
	return p, nil
}

// Render returns the request for a chunk's text and n questions.
func (p Prompt) Render(text string, n int) Request {
	r := strings.NewReplacer("{n}", strconv.Itoa(n), "{chunk}", text)
	return Request{System: p.System, User: r.Replace(p.Template), N: n}
}

// ParseQuestions reads n questions from an answer: a JSON object
// {"questions": [...]} or a JSON array of strings, possibly inside a
// Markdown code fence or surrounded by other text. Any other shape, empty
// or repeated questions, or a count other than n is a *MalformedError.
func ParseQuestions(text string, n int) ([]string, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return nil, malformed("empty answer")
	}
	var qs []string
	obj, arr := strings.IndexByte(s, '{'), strings.IndexByte(s, '[')
	switch {
	case obj >= 0 && (arr < 0 || obj < arr):
		end := strings.LastIndexByte(s, '}')
		if end < obj {
			return nil, malformed("no JSON object")
		}
		var v struct {
			Questions []json.RawMessage `json:"questions"`
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(s[obj : end+1])))
		if err := dec.Decode(&v); err != nil {
			return nil, malformed("not JSON: %v", err)
		}
		if v.Questions == nil {
			return nil, malformed("no \"questions\" array")
		}
		for _, raw := range v.Questions {
			var q string
			if err := json.Unmarshal(raw, &q); err != nil {
				return nil, malformed("a question is not a string: %s", truncate(string(raw), 80))
			}
			qs = append(qs, q)
		}
	case arr >= 0:
		end := strings.LastIndexByte(s, ']')
		if end < arr || json.Unmarshal([]byte(s[arr:end+1]), &qs) != nil {
			return nil, malformed("not a JSON array of strings")
		}
	default:
		return nil, malformed("not JSON: %s", truncate(s, 80))
	}
	seen := map[string]bool{}
	for i, q := range qs {
		q = strings.Join(strings.Fields(q), " ")
		if q == "" {
			return nil, malformed("question %d is empty", i+1)
		}
		k := strings.ToLower(q)
		if seen[k] {
			return nil, malformed("question %d repeats an earlier one", i+1)
		}
		seen[k] = true
		qs[i] = q
	}
	if len(qs) != n {
		return nil, malformed("%d questions, asked for %d", len(qs), n)
	}
	return qs, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

var errNoChunks = errors.New("synth: no chunks")
