package hf

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnknownPrompt is wrapped by errors for a prompt name the folder's
// config_sentence_transformers.json does not define, so that a server can
// answer it as a bad request.
var ErrUnknownPrompt = errors.New("prompt name not defined")

// PromptRole says which of SentenceTransformer's encode methods a text goes
// through, and so which prompt it gets when none is chosen.
type PromptRole int

const (
	// RoleDefault is encode(): the default_prompt_name's prompt, if any.
	RoleDefault PromptRole = iota
	// RoleQuery is encode_query(): the "query" prompt.
	RoleQuery
	// RoleDocument is encode_document(): the first of the "document",
	// "passage" and "corpus" prompts.
	RoleDocument
)

// PromptChoice is what a caller asked for: a literal prompt (ST's prompt=),
// a prompt name (ST's prompt_name=), or neither.
type PromptChoice struct {
	Name string
	// Text, when set, is used as is; Name must then be empty.
	Text *string
}

// PromptNames lists the folder's prompt names, sorted, for error messages.
func (f Folder) PromptNames() string {
	names := make([]string, 0, len(f.Prompts))
	for k := range f.Prompts {
		names = append(names, fmt.Sprintf("%q", k))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ResolvePrompt returns the text to prepend to every input of role, as
// SentenceTransformer.encode / encode_query / encode_document resolve
// prompt and prompt_name (_resolve_prompt).
func (f Folder) ResolvePrompt(c PromptChoice, role PromptRole) (string, error) {
	if c.Text != nil {
		if c.Name != "" {
			return "", fmt.Errorf("give a prompt or a prompt name, not both (prompt name %q)", c.Name)
		}
		return *c.Text, nil
	}
	name := c.Name
	if name == "" {
		switch role {
		case RoleQuery:
			if _, ok := f.Prompts["query"]; ok {
				name = "query"
			}
		case RoleDocument:
			for _, n := range []string{"document", "passage", "corpus"} {
				if _, ok := f.Prompts[n]; ok {
					name = n
					break
				}
			}
		}
	}
	if name == "" {
		name = f.DefaultPromptName
	}
	if name == "" {
		return "", nil
	}
	p, ok := f.Prompts[name]
	if !ok {
		return "", fmt.Errorf("%w: %q is not in %s's prompts (%s)", ErrUnknownPrompt, name, "config_sentence_transformers.json", f.PromptNames())
	}
	return p, nil
}
