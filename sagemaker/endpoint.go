package sagemaker

// Endpoints: a model, its endpoint configuration and the endpoint, created
// together and rolled back together.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// ServerlessSpec is a serverless endpoint's capacity.
type ServerlessSpec struct {
	// MemoryMB is 1024 to 6144 in steps of 1024.
	MemoryMB int32
	// MaxConcurrency is 1 to 200 concurrent invocations.
	MaxConcurrency int32
}

// DeploySpec describes a model, its endpoint configuration and endpoint.
type DeploySpec struct {
	// ModelName and EndpointConfigName default to EndpointName.
	ModelName          string
	EndpointConfigName string
	EndpointName       string
	// ImageURI is the inference image: the AWS PyTorch or Hugging Face
	// inference image, TEI, or embtune's own.
	ImageURI string
	// ModelDataS3 is the model.tar.gz that PackageModel wrote and Push
	// uploaded (or a training job's output).
	ModelDataS3 string
	RoleARN     string
	// InstanceType and InitialInstanceCount (default 1) give an instance
	// variant; Serverless a serverless one instead.
	InstanceType         string
	InitialInstanceCount int32
	Serverless           *ServerlessSpec
	// Environment is passed to the inference container.
	Environment map[string]string
	// VariantName defaults to AllTraffic.
	VariantName string
	// WaitTimeout bounds the wait for InService (default 30 minutes).
	WaitTimeout time.Duration
}

// DeployResult names what Deploy created.
type DeployResult struct {
	ModelARN          string `json:"model_arn"`
	EndpointConfigARN string `json:"endpoint_config_arn"`
	EndpointARN       string `json:"endpoint_arn"`
	EndpointName      string `json:"endpoint_name"`
	Status            string `json:"status"`
	FailureReason     string `json:"failure_reason,omitempty"`
}

// deployInputs validates spec and builds the three requests.
func deployInputs(spec *DeploySpec) (*sm.CreateModelInput, *sm.CreateEndpointConfigInput, *sm.CreateEndpointInput, error) {
	if spec.ModelName == "" {
		spec.ModelName = spec.EndpointName
	}
	if spec.EndpointConfigName == "" {
		spec.EndpointConfigName = spec.EndpointName
	}
	if spec.VariantName == "" {
		spec.VariantName = "AllTraffic"
	}
	for _, n := range []struct{ kind, name string }{
		{"endpoint", spec.EndpointName}, {"model", spec.ModelName}, {"endpoint config", spec.EndpointConfigName}, {"variant", spec.VariantName},
	} {
		if err := checkSageMakerName(n.kind, n.name); err != nil {
			return nil, nil, nil, err
		}
	}
	if spec.ImageURI == "" {
		return nil, nil, nil, errors.New("deploy: an image URI is required")
	}
	if err := checkRole(spec.RoleARN); err != nil {
		return nil, nil, nil, err
	}
	if _, _, err := ParseS3URI(spec.ModelDataS3, true); err != nil {
		return nil, nil, nil, fmt.Errorf("deploy: model data: %w", err)
	}
	variant := smtypes.ProductionVariant{VariantName: aws.String(spec.VariantName), ModelName: aws.String(spec.ModelName)}
	if s := spec.Serverless; s != nil {
		if spec.InstanceType != "" || spec.InitialInstanceCount != 0 {
			return nil, nil, nil, errors.New("deploy: a serverless endpoint takes no instance type or count")
		}
		if s.MemoryMB < 1024 || s.MemoryMB > 6144 || s.MemoryMB%1024 != 0 {
			return nil, nil, nil, fmt.Errorf("deploy: serverless memory %d MB: use 1024, 2048, 3072, 4096, 5120 or 6144", s.MemoryMB)
		}
		if s.MaxConcurrency < 1 || s.MaxConcurrency > 200 {
			return nil, nil, nil, fmt.Errorf("deploy: serverless max concurrency %d: use 1 to 200", s.MaxConcurrency)
		}
		variant.ServerlessConfig = &smtypes.ProductionVariantServerlessConfig{
			MemorySizeInMB: aws.Int32(s.MemoryMB), MaxConcurrency: aws.Int32(s.MaxConcurrency),
		}
	} else {
		if spec.InstanceType == "" {
			return nil, nil, nil, errors.New("deploy: give an instance type (ml.m5.large, ml.g5.xlarge, …) or a serverless configuration")
		}
		count := spec.InitialInstanceCount
		if count == 0 {
			count = 1
		}
		variant.InstanceType = smtypes.ProductionVariantInstanceType(spec.InstanceType)
		variant.InitialInstanceCount = aws.Int32(count)
		variant.InitialVariantWeight = aws.Float32(1)
	}
	model := &sm.CreateModelInput{
		ModelName:        aws.String(spec.ModelName),
		ExecutionRoleArn: aws.String(spec.RoleARN),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image:        aws.String(spec.ImageURI),
			ModelDataUrl: aws.String(spec.ModelDataS3),
			Environment:  spec.Environment,
		},
	}
	cfg := &sm.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(spec.EndpointConfigName),
		ProductionVariants: []smtypes.ProductionVariant{variant},
	}
	ep := &sm.CreateEndpointInput{EndpointName: aws.String(spec.EndpointName), EndpointConfigName: aws.String(spec.EndpointConfigName)}
	return model, cfg, ep, nil
}

// Deploy creates the model, the endpoint configuration (an instance or a
// serverless variant) and the endpoint. If a later step fails, the model
// and configuration this call created are deleted again. With wait it
// blocks until the endpoint is InService (the SDK's EndpointInService
// waiter); an endpoint that fails is an error carrying its FailureReason.
func Deploy(ctx context.Context, client *sm.Client, spec DeploySpec, wait bool) (DeployResult, error) {
	res := DeployResult{EndpointName: spec.EndpointName}
	modelIn, cfgIn, epIn, err := deployInputs(&spec)
	if err != nil {
		return res, err
	}
	var undo []func(context.Context)
	rollback := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i](cctx)
		}
	}
	mout, err := client.CreateModel(ctx, modelIn)
	if err != nil {
		return res, fmt.Errorf("deploy: create model %s: %w", spec.ModelName, err)
	}
	res.ModelARN = aws.ToString(mout.ModelArn)
	undo = append(undo, func(c context.Context) {
		client.DeleteModel(c, &sm.DeleteModelInput{ModelName: modelIn.ModelName}) //nolint:errcheck // best-effort rollback
	})
	cout, err := client.CreateEndpointConfig(ctx, cfgIn)
	if err != nil {
		rollback()
		return res, fmt.Errorf("deploy: create endpoint config %s: %w (model %s deleted again)", spec.EndpointConfigName, err, spec.ModelName)
	}
	res.EndpointConfigARN = aws.ToString(cout.EndpointConfigArn)
	undo = append(undo, func(c context.Context) {
		client.DeleteEndpointConfig(c, &sm.DeleteEndpointConfigInput{EndpointConfigName: cfgIn.EndpointConfigName}) //nolint:errcheck // best-effort rollback
	})
	eout, err := client.CreateEndpoint(ctx, epIn)
	if err != nil {
		rollback()
		return res, fmt.Errorf("deploy: create endpoint %s: %w (model %s and endpoint config %s deleted again)",
			spec.EndpointName, err, spec.ModelName, spec.EndpointConfigName)
	}
	res.EndpointARN = aws.ToString(eout.EndpointArn)
	res.Status = string(smtypes.EndpointStatusCreating)
	if !wait {
		return res, nil
	}
	timeout := spec.WaitTimeout
	if timeout == 0 {
		timeout = 30 * time.Minute
	}
	w := sm.NewEndpointInServiceWaiter(client, func(o *sm.EndpointInServiceWaiterOptions) {
		o.MinDelay = 15 * time.Second
		o.MaxDelay = time.Minute
	})
	_, werr := w.WaitForOutput(ctx, &sm.DescribeEndpointInput{EndpointName: epIn.EndpointName}, timeout)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	d, err := client.DescribeEndpoint(dctx, &sm.DescribeEndpointInput{EndpointName: epIn.EndpointName})
	if err != nil {
		if werr != nil {
			err = werr
		}
		return res, fmt.Errorf("deploy: endpoint %s: %w", spec.EndpointName, err)
	}
	res.Status = string(d.EndpointStatus)
	res.FailureReason = aws.ToString(d.FailureReason)
	return endpointOutcome(res, werr)
}

// endpointOutcome judges an endpoint's state after waiting: only InService
// is a success.
func endpointOutcome(res DeployResult, werr error) (DeployResult, error) {
	if res.Status == string(smtypes.EndpointStatusInService) {
		return res, nil
	}
	reason := res.FailureReason
	if reason == "" && werr != nil {
		reason = werr.Error()
	}
	if reason == "" {
		reason = "no reason given"
	}
	return res, fmt.Errorf("deploy: endpoint %s is %s: %s", res.EndpointName, res.Status, reason)
}
