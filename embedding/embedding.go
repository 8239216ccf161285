// Package embedding names the one thing evaluation, hard-negative mining
// and indexing need from a model: texts in, vectors out. The libtorch
// model (minilm.Model), a server with SageMaker's /invocations contract
// (Remote) and a SageMaker endpoint (sagemaker.Endpoint) all satisfy it.
package embedding

import "context"

// Encoder embeds texts, one vector per text, in order. batchSize is how
// many texts go into one forward pass or request; 0 takes the encoder's
// default.
type Encoder interface {
	Encode(ctx context.Context, texts []string, batchSize int) ([][]float32, error)
}

// RoleEncoder is an Encoder that embeds queries and documents with
// different prompts, as sentence-transformers' encode_query and
// encode_document do (a BGE query instruction, E5's "query: " and
// "passage: "). minilm.Model satisfies it.
type RoleEncoder interface {
	EncodeQueries(ctx context.Context, texts []string, batchSize int) ([][]float32, error)
	EncodeDocuments(ctx context.Context, texts []string, batchSize int) ([][]float32, error)
}

// Queries embeds search queries: EncodeQueries when enc is a RoleEncoder,
// else Encode (a remote endpoint applies its own prompts, if any).
func Queries(ctx context.Context, enc Encoder, texts []string, batchSize int) ([][]float32, error) {
	if r, ok := enc.(RoleEncoder); ok {
		return r.EncodeQueries(ctx, texts, batchSize)
	}
	return enc.Encode(ctx, texts, batchSize)
}

// Documents embeds the documents searched: EncodeDocuments when enc is a
// RoleEncoder, else Encode.
func Documents(ctx context.Context, enc Encoder, texts []string, batchSize int) ([][]float32, error) {
	if r, ok := enc.(RoleEncoder); ok {
		return r.EncodeDocuments(ctx, texts, batchSize)
	}
	return enc.Encode(ctx, texts, batchSize)
}

// Prompted is a RoleEncoder over an encoder that knows no prompts (a
// remote server or endpoint): it prepends the query or document prompt
// here, as sentence-transformers prepends prompt= to each text, and the
// server tokenizes and truncates the whole.
type Prompted struct {
	Encoder
	Query, Document string
}

// EncodeQueries implements RoleEncoder.
func (p Prompted) EncodeQueries(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	return p.Encode(ctx, withPrompt(p.Query, texts), batchSize)
}

// EncodeDocuments implements RoleEncoder.
func (p Prompted) EncodeDocuments(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	return p.Encode(ctx, withPrompt(p.Document, texts), batchSize)
}

func withPrompt(prompt string, texts []string) []string {
	if prompt == "" {
		return texts
	}
	out := make([]string, len(texts))
	for i, t := range texts {
		out[i] = prompt + t
	}
	return out
}
