package sagemaker

// Invocation: InvokeEndpoint with embtune's request and response shapes,
// and a deployed endpoint as an embedding.Encoder.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	smrt "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/embtune/embtune/embedding"
)

// Invoke embeds texts on an endpoint: the body is {"inputs": [...]}, and the
// response may be {"embeddings": [[...]]} (embtune's handler and server) or
// a bare array of arrays (TEI). There must be one finite vector per text,
// all of one width.
func Invoke(ctx context.Context, client *smrt.Client, endpoint string, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, errors.New("invoke: no texts")
	}
	body, err := json.Marshal(map[string][]string{"inputs": texts})
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	out, err := client.InvokeEndpoint(ctx, &smrt.InvokeEndpointInput{
		EndpointName: aws.String(endpoint),
		Body:         body,
		ContentType:  aws.String("application/json"),
		Accept:       aws.String("application/json"),
	})
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", endpoint, err)
	}
	vecs, err := parseEmbeddings(out.Body, len(texts))
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", endpoint, err)
	}
	return vecs, nil
}

// parseEmbeddings reads an endpoint's answer for want texts.
func parseEmbeddings(body []byte, want int) ([][]float32, error) {
	trimmed := bytes.TrimSpace(body)
	var vecs [][]float32
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		var obj struct {
			Embeddings *[][]float32 `json:"embeddings"`
		}
		if err := json.Unmarshal(trimmed, &obj); err != nil || obj.Embeddings == nil {
			return nil, fmt.Errorf("response is not {\"embeddings\": [[...]]}: %s", bodySnippet(trimmed))
		}
		vecs = *obj.Embeddings
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &vecs); err != nil {
			return nil, fmt.Errorf("response is not an array of vectors (token vectors from a feature-extraction pipeline are not pooled embeddings): %s", bodySnippet(trimmed))
		}
	default:
		return nil, fmt.Errorf("response is not JSON: %s", bodySnippet(trimmed))
	}
	if len(vecs) != want {
		return nil, fmt.Errorf("%d vectors for %d texts", len(vecs), want)
	}
	for i, v := range vecs {
		if len(v) == 0 || len(v) != len(vecs[0]) {
			return nil, fmt.Errorf("vector %d has %d values, vector 0 has %d", i, len(v), len(vecs[0]))
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("vector %d is not finite", i)
			}
		}
	}
	return vecs, nil
}

func bodySnippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// Endpoint embeds through a deployed SageMaker endpoint (InvokeEndpoint),
// so that `embtune eval` and `embtune index` can run against the model as
// it is served. It is an embedding.Encoder.
type Endpoint struct {
	Runtime *smrt.Client
	Name    string
}

// Encode implements embedding.Encoder: batches of batchSize texts (0:
// embedding.DefaultRemoteBatch), each under the 6 MB payload limit.
func (e Endpoint) Encode(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	if e.Runtime == nil || e.Name == "" {
		return nil, errors.New("sagemaker endpoint encoder: no runtime client or endpoint name")
	}
	vecs, err := embedding.InBatches(ctx, texts, batchSize, func(ctx context.Context, batch []string) ([][]float32, error) {
		return Invoke(ctx, e.Runtime, e.Name, batch)
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", e.Name, err)
	}
	return vecs, nil
}
