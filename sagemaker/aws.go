package sagemaker

// AWS calls with aws-sdk-go-v2: the clients here; S3 upload (s3.go),
// training jobs (trainingjob.go), endpoints (endpoint.go) and invocation
// (invoke.go) beside it.
//
// Credentials come only from the SDK's default chain (environment, shared
// config and credentials files, SSO, web identity, container and instance
// roles) through config.LoadDefaultConfig; nothing here reads, prints or logs
// them. Endpoints come from the SDK's own settings: AWS_ENDPOINT_URL for
// every service, or AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SAGEMAKER and
// AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME per service (the SDK normalises the
// service ids "S3", "SageMaker" and "SageMaker Runtime" to these names), or
// endpoint_url in the shared config file; AWSOptions.EndpointURL overrides
// them all, for tests and S3-compatible servers.

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smrt "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// AWSOptions configures the AWS clients. The zero value uses the SDK's
// defaults throughout.
type AWSOptions struct {
	// Region overrides AWS_REGION and the profile's region.
	Region string
	// Profile selects a shared-config profile (default: AWS_PROFILE or "default").
	Profile string
	// EndpointURL sends every service's requests to this URL, overriding
	// the AWS_ENDPOINT_URL* variables (tests, S3-compatible servers).
	EndpointURL string
	// S3PathStyle addresses buckets as http://host/bucket/key, which MinIO
	// and most S3-compatible servers need.
	S3PathStyle bool
	// ChecksumWhenRequired computes and validates the SDK's default
	// integrity checksums only when an operation requires them, for servers
	// that reject the newer checksum headers. An explicit Push checksum is
	// still sent.
	ChecksumWhenRequired bool
	// MaxAttempts bounds the SDK's retries per call (0: the SDK's default, 3).
	MaxAttempts int
	// HTTPClient replaces the SDK's HTTP client.
	HTTPClient aws.HTTPClient
}

// AWSClients are the three clients embtune uses.
type AWSClients struct {
	S3        *s3.Client
	SageMaker *sm.Client
	Runtime   *smrt.Client
}

// LoadAWSConfig loads the SDK configuration from the default chain.
func LoadAWSConfig(ctx context.Context, o AWSOptions) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(o.MaxAttempts))
	}
	if o.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(o.HTTPClient))
	}
	if o.ChecksumWhenRequired {
		opts = append(opts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("aws configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("aws configuration: no region: set AWS_REGION, a profile's region, or --region")
	}
	return cfg, nil
}

// NewAWSClients builds the S3, SageMaker and SageMaker Runtime clients.
func NewAWSClients(ctx context.Context, o AWSOptions) (AWSClients, error) {
	cfg, err := LoadAWSConfig(ctx, o)
	if err != nil {
		return AWSClients{}, err
	}
	var c AWSClients
	c.S3 = s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.EndpointURL != "" {
			so.BaseEndpoint = aws.String(o.EndpointURL)
		}
		so.UsePathStyle = so.UsePathStyle || o.S3PathStyle
	})
	c.SageMaker = sm.NewFromConfig(cfg, func(so *sm.Options) {
		if o.EndpointURL != "" {
			so.BaseEndpoint = aws.String(o.EndpointURL)
		}
	})
	c.Runtime = smrt.NewFromConfig(cfg, func(so *smrt.Options) {
		if o.EndpointURL != "" {
			so.BaseEndpoint = aws.String(o.EndpointURL)
		}
	})
	return c, nil
}
