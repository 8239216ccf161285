package main

import (
	"flag"
	"fmt"

	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/hf"
)

// optionalString is a string flag that knows whether it was given, so that
// --query-prompt "" (an explicit empty prompt, as sentence-transformers'
// prompt="") differs from no flag.
type optionalString struct {
	value string
	set   bool
}

func (o *optionalString) String() string { return o.value }
func (o *optionalString) Set(s string) error {
	o.value, o.set = s, true
	return nil
}

func (o *optionalString) ptr() *string {
	if !o.set {
		return nil
	}
	v := o.value
	return &v
}

// promptFlags choose the query and document prompts, as
// sentence-transformers' encode_query / encode_document take prompt_name=
// (a key of config_sentence_transformers.json's prompts) or prompt= (the
// text itself).
type promptFlags struct {
	queryName, documentName string
	query, document         optionalString
}

func (p *promptFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.queryName, "query-prompt-name", "",
		"prompt for queries, by name from the model's config_sentence_transformers.json (empty: \"query\", as encode_query)")
	fs.Var(&p.query, "query-prompt", "prompt text prepended to queries (overrides the folder's; \"\" for none)")
	fs.StringVar(&p.documentName, "document-prompt-name", "",
		"prompt for documents, by name (empty: the first of \"document\", \"passage\", \"corpus\", as encode_document)")
	fs.Var(&p.document, "document-prompt", "prompt text prepended to documents (overrides the folder's; \"\" for none)")
}

func (p *promptFlags) choices() (query, document hf.PromptChoice, err error) {
	if p.queryName != "" && p.query.set {
		return query, document, usageError("give --query-prompt or --query-prompt-name, not both")
	}
	if p.documentName != "" && p.document.set {
		return query, document, usageError("give --document-prompt or --document-prompt-name, not both")
	}
	return hf.PromptChoice{Name: p.queryName, Text: p.query.ptr()},
		hf.PromptChoice{Name: p.documentName, Text: p.document.ptr()}, nil
}

// documentPrompt is the prompt this run embeds documents with: the flags'
// choice, or the folder's (encode_document's).
func (m *modelFlags) documentPrompt() (string, error) {
	_, document, err := m.prompts.choices()
	if err != nil {
		return "", err
	}
	f, err := hf.ReadFolder(m.dir)
	if err != nil {
		return "", err
	}
	p, err := f.ResolvePrompt(document, hf.RoleDocument)
	if err != nil {
		return "", usageError("document prompt: %v", err)
	}
	return p, nil
}

// checkPrompts fails fast on a prompt name the model folder does not
// define, before a server starts and reports it only on /ping. A folder
// that does not read is left for the model load to report.
func (m *modelFlags) checkPrompts() error {
	query, document, err := m.prompts.choices()
	if err != nil {
		return err
	}
	f, err := hf.ReadFolder(m.dir)
	if err != nil {
		return nil
	}
	for _, c := range []struct {
		flag   string
		choice hf.PromptChoice
		role   hf.PromptRole
	}{{"--default-prompt-name", m.defaultPrompt, hf.RoleDefault}, {"--query-prompt-name", query, hf.RoleQuery}, {"--document-prompt-name", document, hf.RoleDocument}} {
		if _, err := f.ResolvePrompt(c.choice, c.role); err != nil {
			return usageError("%s: %v", c.flag, err)
		}
	}
	return nil
}

// remoteWithPrompts gives a remote encoder the query and document prompts
// of the local model folder (--model, with the prompt flags), prepended on
// this side, so that eval and index through a server embed as they would
// with the weights loaded. A folder that does not read locally leaves the
// encoder as it is. A folder with a default_prompt_name is refused: the
// server would prepend it as well.
func (m *modelFlags) remoteWithPrompts(enc embedding.Encoder) (embedding.Encoder, error) {
	f, err := hf.ReadFolder(m.dir)
	if err != nil {
		return enc, nil
	}
	query, document, err := m.prompts.choices()
	if err != nil {
		return nil, err
	}
	q, err := f.ResolvePrompt(query, hf.RoleQuery)
	if err != nil {
		return nil, usageError("--query-prompt-name: %v", err)
	}
	d, err := f.ResolvePrompt(document, hf.RoleDocument)
	if err != nil {
		return nil, usageError("--document-prompt-name: %v", err)
	}
	if q == "" && d == "" {
		return enc, nil
	}
	if f.DefaultPromptName != "" {
		return nil, fmt.Errorf("%s sets default_prompt_name %q, which a server prepends to every input: "+
			"query and document prompts cannot be added on top through --encoder-url/--endpoint; load the weights here instead",
			m.dir, f.DefaultPromptName)
	}
	return embedding.Prompted{Encoder: enc, Query: q, Document: d}, nil
}
