package sagemaker

import (
	"context"
	"errors"
	"fmt"

	smrt "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/embtune/embtune/embedding"
)

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
