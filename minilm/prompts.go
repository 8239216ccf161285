package minilm

import (
	"context"
	"fmt"

	"github.com/embtune/embtune/hf"
)

// resolvePrompts resolves the prompt of each role from the folder and the
// caller's choices, so that a prompt name the folder does not define fails
// at load.
func resolvePrompts(f hf.Folder, opts Options) (map[hf.PromptRole]string, error) {
	out := map[hf.PromptRole]string{}
	for _, r := range []struct {
		role   hf.PromptRole
		choice hf.PromptChoice
		what   string
	}{
		{hf.RoleDefault, opts.DefaultPrompt, "default prompt"},
		{hf.RoleQuery, opts.QueryPrompt, "query prompt"},
		{hf.RoleDocument, opts.DocumentPrompt, "document prompt"},
	} {
		p, err := f.ResolvePrompt(r.choice, r.role)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.what, err)
		}
		out[r.role] = p
	}
	return out, nil
}

// Prompt is the text prepended to inputs of role (resolved at load).
func (m *Model) Prompt(role hf.PromptRole) string { return m.prompts[role] }

// PromptByName resolves one of the folder's prompt names, as a request's
// prompt_name (TEI) does: "" gives the role's prompt.
func (m *Model) PromptByName(name string, role hf.PromptRole) (string, error) {
	if name == "" {
		return m.prompts[role], nil
	}
	return m.Folder.ResolvePrompt(hf.PromptChoice{Name: name}, role)
}

// EncodeQueries embeds search queries as SentenceTransformer.encode_query
// does: with the query prompt.
func (m *Model) EncodeQueries(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	r, err := m.EncodePrompted(ctx, texts, batchSize, m.prompts[hf.RoleQuery])
	return r.Vectors, err
}

// EncodeDocuments embeds documents as SentenceTransformer.encode_document
// does: with the document prompt.
func (m *Model) EncodeDocuments(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	r, err := m.EncodePrompted(ctx, texts, batchSize, m.prompts[hf.RoleDocument])
	return r.Vectors, err
}
