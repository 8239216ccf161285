package main

import (
	"context"
	"flag"

	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/sagemaker"
)

// remoteFlags let eval and index embed through a served model instead of
// loading its weights here: --encoder-url for a server with SageMaker's
// /invocations contract (embtune serve, the inference container), or
// --endpoint for a deployed SageMaker endpoint.
type remoteFlags struct {
	url      string
	endpoint string
	aws      smAWSFlags
}

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.url, "encoder-url", "", "embed through this server's POST /invocations (embtune serve, a SageMaker inference container) instead of loading the weights here")
	fs.StringVar(&r.endpoint, "endpoint", "", "embed through this SageMaker endpoint (InvokeEndpoint) instead of loading the weights here")
	r.aws.register(fs)
}

// encoder returns the remote encoder, or nil when neither flag is set.
func (r *remoteFlags) encoder(ctx context.Context) (embedding.Encoder, error) {
	switch {
	case r.url != "" && r.endpoint != "":
		return nil, usageError("give --encoder-url or --endpoint, not both")
	case r.url != "":
		return embedding.Remote{URL: r.url}, nil
	case r.endpoint != "":
		c, err := r.aws.clients(ctx)
		if err != nil {
			return nil, err
		}
		return sagemaker.Endpoint{Runtime: c.Runtime, Name: r.endpoint}, nil
	}
	return nil, nil
}
