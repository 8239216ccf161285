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
