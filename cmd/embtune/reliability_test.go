package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// fakeAWS keeps the SDK's default chain off real credentials and regions.
func fakeAWS(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	for _, k := range []string{"AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
}

// A flag after the first text was sent as text, and the request signed for
// real AWS instead of --endpoint-url.
func TestInvokeParsesFlagsAfterTexts(t *testing.T) {
	fakeAWS(t)
	code, out, stderr := runCLI(context.Background(),
		[]string{"sagemaker", "invoke", "--endpoint", "ep1", "hello", "--endpoint-url", "http://127.0.0.1:1"}, "")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, stderr, "127.0.0.1:1")
	assert.NotContains(t, stderr, "amazonaws.com")

	// After "--" everything is text, even what looks like a flag.
	code, _, stderr = runCLI(context.Background(),
		[]string{"sagemaker", "invoke", "--endpoint-url", "http://127.0.0.1:1", "--endpoint", "ep1", "--", "--not-a-flag"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "127.0.0.1:1")

	code, _, stderr = runCLI(context.Background(), []string{"sagemaker", "invoke", "--endpoint", "ep1", "hello", "--bogus"}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "bogus")
}

// A failed train-job or deploy printed an empty result object.
func TestFailedSageMakerCallsPrintNoResult(t *testing.T) {
	fakeAWS(t)
	for _, args := range [][]string{
		{"sagemaker", "train-job", "--name", "job1", "--image", "img", "--role", "arn:aws:iam::123456789012:role/r",
			"--train", "s3://b/data/", "--output", "s3://b/out", "--no-check", "--endpoint-url", "http://127.0.0.1:1"},
		{"sagemaker", "deploy", "--name", "ep1", "--image", "img", "--model-data", "s3://b/model.tar.gz",
			"--role", "arn:aws:iam::123456789012:role/r", "--instance-type", "ml.m5.large", "--no-check", "--endpoint-url", "http://127.0.0.1:1"},
	} {
		code, out, stderr := runCLI(context.Background(), args, "")
		assert.Equal(t, 1, code, args[1])
		assert.Empty(t, out, args[1])
		assert.Contains(t, stderr, "127.0.0.1:1", args[1])
	}
}
