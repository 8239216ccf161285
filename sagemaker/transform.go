package sagemaker

// Batch Transform: bulk embedding of a corpus in S3 by a model's container
// on many instances, and fetching its output.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/embtune/embtune/atomicfile"
)

// MaxTransformPayloadMB is the most MaxPayloadInMB a transform job of the
// embtune server may ask for: SageMaker's invocation limit, 6 MB, which the
// server enforces (serve.DefaultMaxPayloadBytes), though Batch Transform
// itself would allow 100.
const MaxTransformPayloadMB = 6

// TransformJobSpec describes a Batch Transform job that embeds JSON Lines
// files (one text per line, a JSON string or {"text": …}) with a model
// created by embtune sagemaker deploy.
type TransformJobSpec struct {
	Name      string
	ModelName string
	// InputS3 is an S3 prefix (all objects under it) or one object.
	InputS3  string
	OutputS3 string
	// InstanceType defaults to ml.m5.xlarge; InstanceCount to 1. Objects,
	// not lines, are shared among instances (ShardedByS3Key).
	InstanceType  string
	InstanceCount int
	// MaxPayloadMB bounds one request (0: ask the container's
	// /execution-parameters); at most MaxTransformPayloadMB.
	MaxPayloadMB int
	// MaxConcurrent is MaxConcurrentTransforms (0: ask the container).
	MaxConcurrent int
	// MaxRuntime bounds each request (TransformJob's
	// ModelClientConfig.InvocationsTimeoutInSeconds); 0 is SageMaker's 600s.
	InvocationTimeout time.Duration
}

// TransformJobResult is a transform job's state.
type TransformJobResult struct {
	Name          string
	ARN           string
	Status        string
	FailureReason string
	OutputS3      string
}

func transformJobInput(spec TransformJobSpec) (*sm.CreateTransformJobInput, error) {
	if err := checkSageMakerName("transform job", spec.Name); err != nil {
		return nil, err
	}
	if err := checkSageMakerName("model", spec.ModelName); err != nil {
		return nil, err
	}
	for _, u := range []string{spec.InputS3, spec.OutputS3} {
		if _, _, err := ParseS3URI(u, false); err != nil {
			return nil, err
		}
	}
	switch {
	case spec.MaxPayloadMB < 0 || spec.MaxPayloadMB > MaxTransformPayloadMB:
		return nil, fmt.Errorf("max payload %d MB: the embtune server takes at most %d MB per request (SageMaker's invocation limit); split the input lines into smaller requests instead", spec.MaxPayloadMB, MaxTransformPayloadMB)
	case spec.InstanceCount < 0:
		return nil, fmt.Errorf("instance count %d must be positive", spec.InstanceCount)
	case spec.MaxConcurrent < 0:
		return nil, fmt.Errorf("max concurrent transforms %d must not be negative", spec.MaxConcurrent)
	}
	typ := spec.InstanceType
	if typ == "" {
		typ = "ml.m5.xlarge"
	}
	in := &sm.CreateTransformJobInput{
		TransformJobName: aws.String(spec.Name),
		ModelName:        aws.String(spec.ModelName),
		// MultiRecord packs as many lines as fit MaxPayloadInMB into one
		// application/jsonlines request; Line splits and reassembles files
		// by line, so output line i answers input line i.
		BatchStrategy: smtypes.BatchStrategyMultiRecord,
		TransformInput: &smtypes.TransformInput{
			ContentType: aws.String("application/jsonlines"),
			SplitType:   smtypes.SplitTypeLine,
			DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{
				S3DataType: smtypes.S3DataTypeS3Prefix,
				S3Uri:      aws.String(spec.InputS3),
			}},
		},
		TransformOutput: &smtypes.TransformOutput{
			S3OutputPath: aws.String(spec.OutputS3),
			Accept:       aws.String("application/jsonlines"),
			AssembleWith: smtypes.AssemblyTypeLine,
		},
		TransformResources: &smtypes.TransformResources{
			InstanceType:  smtypes.TransformInstanceType(typ),
			InstanceCount: aws.Int32(int32(max(1, spec.InstanceCount))),
		},
	}
	if spec.MaxPayloadMB > 0 {
		in.MaxPayloadInMB = aws.Int32(int32(spec.MaxPayloadMB))
	}
	if spec.MaxConcurrent > 0 {
		in.MaxConcurrentTransforms = aws.Int32(int32(spec.MaxConcurrent))
	}
	if spec.InvocationTimeout > 0 {
		in.ModelClientConfig = &smtypes.ModelClientConfig{InvocationsTimeoutInSeconds: aws.Int32(durationSeconds(spec.InvocationTimeout))}
	}
	return in, nil
}

// CreateTransformJob starts a Batch Transform job. With wait it blocks
// until the job completes, stops or fails (the SDK's
// TransformJobCompletedOrStopped waiter, up to maxWait); a failed or
// stopped job is an error carrying SageMaker's FailureReason.
func CreateTransformJob(ctx context.Context, client *sm.Client, spec TransformJobSpec, wait bool, maxWait time.Duration) (TransformJobResult, error) {
	res := TransformJobResult{Name: spec.Name, OutputS3: spec.OutputS3}
	in, err := transformJobInput(spec)
	if err != nil {
		return res, err
	}
	out, err := client.CreateTransformJob(ctx, in)
	if err != nil {
		return res, fmt.Errorf("create transform job %s: %w", spec.Name, err)
	}
	res.ARN = aws.ToString(out.TransformJobArn)
	res.Status = string(smtypes.TransformJobStatusInProgress)
	if !wait {
		return res, nil
	}
	return WaitTransformJob(ctx, client, spec.Name, maxWait)
}

// WaitTransformJob waits up to maxWait for a transform job to complete,
// stop or fail, and returns its final state; only Completed is a success.
func WaitTransformJob(ctx context.Context, client *sm.Client, name string, maxWait time.Duration) (TransformJobResult, error) {
	w := sm.NewTransformJobCompletedOrStoppedWaiter(client, func(o *sm.TransformJobCompletedOrStoppedWaiterOptions) {
		o.MinDelay = 30 * time.Second
		o.MaxDelay = 5 * time.Minute
	})
	_, werr := w.WaitForOutput(ctx, &sm.DescribeTransformJobInput{TransformJobName: aws.String(name)}, maxWait)
	return afterWait(ctx, "transform job", name, werr,
		func(ctx context.Context) (TransformJobResult, error) { return DescribeTransformJob(ctx, client, name) },
		func(r TransformJobResult) (string, string) { return r.Status, r.FailureReason })
}

// DescribeTransformJob returns a transform job's state.
func DescribeTransformJob(ctx context.Context, client *sm.Client, name string) (TransformJobResult, error) {
	out, err := client.DescribeTransformJob(ctx, &sm.DescribeTransformJobInput{TransformJobName: aws.String(name)})
	if err != nil {
		return TransformJobResult{Name: name}, fmt.Errorf("describe transform job %s: %w", name, err)
	}
	res := TransformJobResult{
		Name:          aws.ToString(out.TransformJobName),
		ARN:           aws.ToString(out.TransformJobArn),
		Status:        string(out.TransformJobStatus),
		FailureReason: aws.ToString(out.FailureReason),
	}
	if out.TransformOutput != nil {
		res.OutputS3 = aws.ToString(out.TransformOutput.S3OutputPath)
	}
	return res, nil
}

// Download copies every object under the S3 prefix uri into dir, keeping
// the names relative to the prefix, each file written atomically. It
// returns the number of objects.
func Download(ctx context.Context, client *s3.Client, uri, dir string) (int, error) {
	bucket, prefix, err := ParseS3URI(uri, false)
	if err != nil {
		return 0, err
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	n := 0
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("list %s: %w", uri, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			rel := strings.TrimPrefix(key, prefix)
			if rel == "" || strings.HasSuffix(rel, "/") {
				continue
			}
			local := filepath.Join(dir, filepath.FromSlash(rel))
			if !strings.HasPrefix(local, filepath.Clean(dir)+string(filepath.Separator)) {
				return n, fmt.Errorf("download %s: object %q would leave %s", uri, key, dir)
			}
			if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
				return n, err
			}
			obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return n, fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
			}
			err = atomicfile.Write(local, func(w io.Writer) error { _, err := io.Copy(w, obj.Body); return err })
			obj.Body.Close()
			if err != nil {
				return n, fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
			}
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("download %s: no objects there", uri)
	}
	return n, nil
}
