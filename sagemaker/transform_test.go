package sagemaker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransformOnMoto creates Batch Transform jobs on moto_server with the
// corpus in MinIO, and downloads a job's output folder from MinIO. moto
// records the job and reports it Completed; it runs no container, so the
// output objects are put there by the test.
func TestTransformOnMoto(t *testing.T) {
	minio := startMinIO(t)
	moto := startMoto(t)
	useTestAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", minio.URL())
	t.Setenv("AWS_ENDPOINT_URL_SAGEMAKER", moto.URL())
	rec := newRecordingHTTP()
	c := testClients(t, "", func(o *AWSOptions) { o.HTTPClient = rec })
	ctx := context.Background()

	createBucket(t, c.S3, "embtune")
	for _, key := range []string{"chunks/chunks-00000.jsonl", "out/chunks-00000.jsonl.out", "out/sub/chunks-00001.jsonl.out"} {
		_, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("embtune"), Key: aws.String(key), Body: strings.NewReader(key + "\n")})
		require.NoError(t, err)
	}
	spec := TransformJobSpec{Name: "embtune-faq-embed", ModelName: "embtune-faq", InputS3: "s3://embtune/chunks/",
		OutputS3: "s3://embtune/out/", InstanceType: "ml.c5.xlarge", InstanceCount: 3, InvocationTimeout: 5 * time.Minute}

	t.Run("create and describe", func(t *testing.T) {
		res, err := CreateTransformJob(ctx, c.SageMaker, spec, false, 0)
		require.NoError(t, err)
		assert.Contains(t, res.ARN, ":transform-job/embtune-faq-embed")
		d, err := c.SageMaker.DescribeTransformJob(ctx, &sm.DescribeTransformJobInput{TransformJobName: aws.String(spec.Name)})
		require.NoError(t, err)
		assert.Equal(t, "embtune-faq", aws.ToString(d.ModelName))
		assert.Equal(t, smtypes.BatchStrategyMultiRecord, d.BatchStrategy)
		assert.Equal(t, "application/jsonlines", aws.ToString(d.TransformInput.ContentType))
		assert.Equal(t, smtypes.SplitTypeLine, d.TransformInput.SplitType)
		assert.Equal(t, "s3://embtune/chunks/", aws.ToString(d.TransformInput.DataSource.S3DataSource.S3Uri))
		assert.Equal(t, smtypes.AssemblyTypeLine, d.TransformOutput.AssembleWith)
		assert.Equal(t, "application/jsonlines", aws.ToString(d.TransformOutput.Accept))
		assert.Equal(t, int32(3), aws.ToInt32(d.TransformResources.InstanceCount))
		assert.Equal(t, smtypes.TransformInstanceType("ml.c5.xlarge"), d.TransformResources.InstanceType)
		// Left to the container's /execution-parameters.
		assert.Nil(t, d.MaxPayloadInMB)
		assert.Contains(t, string(rec.body("CreateTransformJob")), `"InvocationsTimeoutInSeconds":300`)
	})

	t.Run("wait", func(t *testing.T) {
		s := spec
		s.Name, s.MaxPayloadMB, s.MaxConcurrent = "embtune-faq-embed-wait", 6, 2
		start := time.Now()
		res, err := CreateTransformJob(ctx, c.SageMaker, s, true, time.Hour)
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 20*time.Second, "the waiter's first check is immediate")
		assert.Equal(t, "Completed", res.Status)
		assert.Equal(t, "s3://embtune/out/", res.OutputS3)
		d, err := c.SageMaker.DescribeTransformJob(ctx, &sm.DescribeTransformJobInput{TransformJobName: aws.String(s.Name)})
		require.NoError(t, err)
		assert.Equal(t, int32(6), aws.ToInt32(d.MaxPayloadInMB))
		assert.Equal(t, int32(2), aws.ToInt32(d.MaxConcurrentTransforms))
		_, err = DescribeTransformJob(ctx, c.SageMaker, "no-such-job")
		assert.Error(t, err)
	})

	t.Run("refused before any call", func(t *testing.T) {
		for _, c2 := range []struct {
			tweak func(*TransformJobSpec)
			msg   string
		}{
			{func(s *TransformJobSpec) { s.MaxPayloadMB = 7 }, "at most 6 MB"},
			{func(s *TransformJobSpec) { s.InputS3 = "/local/dir" }, "s3://"},
			{func(s *TransformJobSpec) { s.Name = "bad name" }, "transform job"},
			{func(s *TransformJobSpec) { s.InstanceCount = -1 }, "instance count"},
		} {
			s := spec
			c2.tweak(&s)
			_, err := CreateTransformJob(ctx, c.SageMaker, s, false, 0)
			assert.ErrorContains(t, err, c2.msg)
		}
	})

	t.Run("download output", func(t *testing.T) {
		dir := t.TempDir()
		n, err := Download(ctx, c.S3, "s3://embtune/out", dir)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		b, err := os.ReadFile(filepath.Join(dir, "sub", "chunks-00001.jsonl.out"))
		require.NoError(t, err)
		assert.Equal(t, "out/sub/chunks-00001.jsonl.out\n", string(b))
		_, err = Download(ctx, c.S3, "s3://embtune/nothing/", t.TempDir())
		assert.ErrorContains(t, err, "no objects")
	})
}
