package sagemaker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/embtune/embtune/embedding"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTrainingMetricDefinitions(t *testing.T) {
	lines := []string{
		`time=2026-03-01T12:00:00.000Z level=INFO msg=step step=12 epoch=2.00 loss=0.103313 lr=3.981e-05 grad_norm=5.6125 pairs_per_sec=7.89`,
		`time=2026-03-01T11:59:00.000Z level=INFO msg="base model" ndcg@10=0.7496 mrr@10=0.7012 accuracy@1=0.5417`,
		`time=2026-03-01T12:03:00.000Z level=INFO msg="tuned model" ndcg@10=0.7866 mrr@10=0.7400 accuracy@1=0.6250`,
		`time=2026-03-01T12:04:00.000Z level=INFO msg=fold fold=1 base_ndcg@10=0.7412 tuned_ndcg@10=0.8012 p_value=0.0123`,
		`time=2026-03-01T12:00:00.000Z level=INFO msg=training pairs=96 epochs=10 batch_size=16 final_loss=0.2`,
		`time=2026-03-01T12:01:00.000Z level=INFO msg=validation step=9 epoch=3.00 ndcg@10=0.8042 best_step=6 best=0.8100`,
		`time=2026-03-01T12:05:00.000Z level=INFO msg=comparison metric=ndcg@10 questions=120 gain=-0.0170 ci_low=-0.0310 ci_high=0.0040 resamples=10000 verdict=worse sign=-1 summary="tuned is worse: fold 3 (p = 0.002)"`,
	}
	want := map[string][]string{ // metric -> the value found on each line ("" none)
		"train:loss":              {"0.103313", "", "", "", "", "", ""},
		"train:lr":                {"3.981e-05", "", "", "", "", "", ""},
		"train:grad_norm":         {"5.6125", "", "", "", "", "", ""},
		"train:epoch":             {"2.00", "", "", "", "", "", ""},
		"train:pairs_per_sec":     {"7.89", "", "", "", "", "", ""},
		"eval:ndcg@10":            {"", "0.7496", "0.7866", "", "", "", ""},
		"eval:base_ndcg@10":       {"", "0.7496", "", "", "", "", ""},
		"eval:tuned_ndcg@10":      {"", "", "0.7866", "", "", "", ""},
		"eval:tuned_mrr@10":       {"", "", "0.7400", "", "", "", ""},
		"eval:tuned_accuracy@1":   {"", "", "0.6250", "", "", "", ""},
		"eval:fold_tuned_ndcg@10": {"", "", "", "0.8012", "", "", ""},
		"eval:fold_p_value":       {"", "", "", "0.0123", "", "", ""},
		"eval:ndcg@10_gain":       {"", "", "", "", "", "", "-0.0170"},
		"eval:ndcg@10_ci_low":     {"", "", "", "", "", "", "-0.0310"},
		"eval:ndcg@10_ci_high":    {"", "", "", "", "", "", "0.0040"},
		"eval:verdict":            {"", "", "", "", "", "", "-1"},
		"validation:ndcg@10":      {"", "", "", "", "", "0.8042", ""},
		"validation:best":         {"", "", "", "", "", "0.8100", ""},
	}
	require.Len(t, TrainingMetricDefinitions, len(want))
	names := map[string]bool{}
	for _, m := range TrainingMetricDefinitions {
		assert.False(t, names[m.Name], "duplicate %s", m.Name)
		names[m.Name] = true
		assert.LessOrEqual(t, len(m.Regex), 500)
		assert.NotContains(t, m.Regex, "(?P<", "named groups differ between regex dialects")
		assert.NotContains(t, m.Regex, "(?=")
		assert.NotContains(t, m.Regex, "(?<")
		re := regexp.MustCompile(m.Regex)
		assert.Equal(t, 1, re.NumSubexp(), m.Name)
		for i, line := range lines {
			got := ""
			if sub := re.FindStringSubmatch(line); sub != nil {
				got = sub[1]
				_, err := strconv.ParseFloat(got, 64)
				assert.NoError(t, err, "%s on line %d", m.Name, i)
			}
			assert.Equal(t, want[m.Name][i], got, "%s on line %d", m.Name, i)
		}
	}
	assert.LessOrEqual(t, len(TrainingMetricDefinitions), 40, "SageMaker allows 40 metric definitions")
}

func TestTrainingJobInput(t *testing.T) {
	base := TrainingJobSpec{
		Name: "embtune-faq-1", ImageURI: "123456789012.dkr.ecr.us-east-1.amazonaws.com/embtune:train",
		RoleARN: "arn:aws:iam::123456789012:role/SageMakerRole", InstanceType: "ml.g5.xlarge",
		Channels: map[string]string{"training": "s3://b/data/train.jsonl", "test": "s3://b/data/test/"},
		OutputS3: "s3://b/output/", Hyperparameters: map[string]string{"epochs": "3"},
	}
	in, err := trainingJobInput(base)
	require.NoError(t, err)
	assert.Equal(t, int32(86400), aws.ToInt32(in.StoppingCondition.MaxRuntimeInSeconds))
	assert.Nil(t, in.StoppingCondition.MaxWaitTimeInSeconds)
	assert.Nil(t, in.CheckpointConfig)
	assert.Equal(t, "test", aws.ToString(in.InputDataConfig[0].ChannelName), "channels are sorted")
	assert.Equal(t, int32(1), aws.ToInt32(in.ResourceConfig.InstanceCount))
	assert.Len(t, in.AlgorithmSpecification.MetricDefinitions, len(TrainingMetricDefinitions))

	spot := base
	spot.Spot, spot.MaxRuntime = true, 2*time.Hour
	in, err = trainingJobInput(spot)
	require.NoError(t, err)
	assert.Equal(t, int32(4*3600), aws.ToInt32(in.StoppingCondition.MaxWaitTimeInSeconds))
	assert.Equal(t, "s3://b/output/embtune-faq-1/checkpoints", aws.ToString(in.CheckpointConfig.S3Uri))
	assert.Equal(t, "/opt/ml/checkpoints", aws.ToString(in.CheckpointConfig.LocalPath))

	for name, edit := range map[string]func(*TrainingJobSpec){
		"bad name":        func(s *TrainingJobSpec) { s.Name = "under_score" },
		"long name":       func(s *TrainingJobSpec) { s.Name = strings.Repeat("a", 64) },
		"no image":        func(s *TrainingJobSpec) { s.ImageURI = "" },
		"bad role":        func(s *TrainingJobSpec) { s.RoleARN = "SageMakerRole" },
		"no channels":     func(s *TrainingJobSpec) { s.Channels = nil },
		"bad channel":     func(s *TrainingJobSpec) { s.Channels = map[string]string{"training": "/local/file"} },
		"bad output":      func(s *TrainingJobSpec) { s.OutputS3 = "b/output" },
		"wait < runtime":  func(s *TrainingJobSpec) { s.Spot, s.MaxRuntime, s.MaxWait = true, 2*time.Hour, time.Hour },
		"wait, no spot":   func(s *TrainingJobSpec) { s.MaxWait = time.Hour },
		"huge hyperparam": func(s *TrainingJobSpec) { s.Hyperparameters = map[string]string{"pair": strings.Repeat("x", 2501)} },
	} {
		s := base
		edit(&s)
		_, err := trainingJobInput(s)
		assert.Error(t, err, name)
	}
}

// moto completes every job and endpoint at once, so the failure outcomes
// are checked here.
func TestWaitOutcomes(t *testing.T) {
	outcome := func(r TrainingJobResult, werr error) error {
		st, reason := trainingState(r)
		return jobOutcome("training job", r.Name, st, reason, werr)
	}
	require.NoError(t, outcome(TrainingJobResult{Name: "j", Status: "Completed"}, nil))
	assert.EqualError(t, jobOutcome("transform job", "t", "Failed", "", nil), "transform job t failed: no reason given")
	err := outcome(TrainingJobResult{Name: "j", Status: "Failed", FailureReason: "AlgorithmError: training channel: no data file"}, errors.New("waiter state transitioned to Failure"))
	assert.EqualError(t, err, "training job j failed: AlgorithmError: training channel: no data file")
	err = outcome(TrainingJobResult{Name: "j", Status: "Stopped"}, nil)
	assert.EqualError(t, err, "training job j stopped: no reason given")
	err = outcome(TrainingJobResult{Name: "j", Status: "InProgress"}, errors.New("exceeded max wait time"))
	assert.EqualError(t, err, "training job j is still InProgress: exceeded max wait time")

	_, err = endpointOutcome(DeployResult{EndpointName: "e", Status: "InService"}, nil)
	require.NoError(t, err)
	_, err = endpointOutcome(DeployResult{EndpointName: "e", Status: "Failed", FailureReason: "The primary container for production variant AllTraffic did not pass the ping health check."}, errors.New("waiter state transitioned to Failure"))
	assert.EqualError(t, err, "deploy: endpoint e is Failed: The primary container for production variant AllTraffic did not pass the ping health check.")
	_, err = endpointOutcome(DeployResult{EndpointName: "e", Status: "Creating"}, errors.New("exceeded max wait time"))
	assert.EqualError(t, err, "deploy: endpoint e is Creating: exceeded max wait time")
}

func TestParseEmbeddings(t *testing.T) {
	v, err := parseEmbeddings([]byte(` {"embeddings": [[0.6, 0.8], [1, 0]]}`), 2)
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{0.6, 0.8}, {1, 0}}, v)
	v, err = parseEmbeddings([]byte(`[[0, 1]]`), 1)
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{0, 1}}, v)
	for body, msg := range map[string]string{
		`{"embeddings": [[1, 0]]}`:            "1 vectors for 2 texts",
		`{"vectors": [[1, 0], [0, 1]]}`:       `not {"embeddings"`,
		`[[[0.1, 0.2]], [[0.3, 0.4]]]`:        "token vectors",
		`[[1, 0], [1]]`:                       "vector 1 has 1 values",
		`[[], []]`:                            "vector 0 has 0 values",
		`body`:                                "not JSON",
		`{"embeddings": [[1, 0], [0, 1e39]]}`: `not {"embeddings"`,
	} {
		_, err := parseEmbeddings([]byte(body), 2)
		require.Error(t, err, body)
		assert.Contains(t, err.Error(), msg, body)
	}
}

func TestParseS3URI(t *testing.T) {
	b, k, err := ParseS3URI("s3://bucket/a/b.tar.gz", true)
	require.NoError(t, err)
	assert.Equal(t, []string{"bucket", "a/b.tar.gz"}, []string{b, k})
	_, _, err = ParseS3URI("s3://bucket/", true)
	assert.Error(t, err)
	_, _, err = ParseS3URI("https://bucket/key", false)
	assert.Error(t, err)
	_, _, err = ParseS3URI("s3:///key", false)
	assert.Error(t, err)
}

// randomFile writes n random bytes.
func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "blob")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p, b
}

func createBucket(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	_, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) (*s3.GetObjectOutput, []byte) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled,
	})
	require.NoError(t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return out, b
}

// compositeCRC32 is S3's checksum of a multipart object: the CRC32 of the
// parts' CRC32s, then "-" and the number of parts.
func compositeCRC32(data []byte, part int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(data); off += part {
		sums = binary.BigEndian.AppendUint32(sums, crc32.ChecksumIEEE(data[off:min(off+part, len(data))]))
		n++
	}
	return crc32Base64(sums) + "-" + strconv.Itoa(n)
}

func crc32Base64(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

func objectMissing(t *testing.T, c *s3.Client, bucket, key string) {
	t.Helper()
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var nf *s3types.NotFound
	require.True(t, errors.As(err, &nf), "an object exists under %s: HeadObject said %v", key, err)
}

func pendingUploads(t *testing.T, c *s3.Client, bucket, key string) []string {
	t.Helper()
	out, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	require.NoError(t, err)
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.ToString(u.UploadId))
	}
	return ids
}

func TestPushToMinIO(t *testing.T) {
	minio := startMinIO(t)
	useTestAWSEnv(t)
	c := testClients(t, minio.URL()).S3
	ctx := context.Background()
	createBucket(t, c, "models")

	t.Run("small, single PUT", func(t *testing.T) {
		path, data := randomFile(t, 100<<10)
		res, err := Push(ctx, c, PushOptions{Bucket: "models", Key: "small/model.tar.gz", Path: path, PathStyle: true})
		require.NoError(t, err)
		assert.Equal(t, "s3://models/small/model.tar.gz", res.URI)
		assert.NotEmpty(t, res.ETag)
		assert.Equal(t, 0, res.Parts)
		assert.Equal(t, int64(len(data)), res.Size)
		sum := sha256.Sum256(data)
		assert.Equal(t, hex.EncodeToString(sum[:]), res.SHA256)
		assert.Equal(t, "CRC32", res.ChecksumAlgorithm)
		assert.Equal(t, crc32Base64(data), res.Checksum)

		out, got := getObject(t, c, "models", "small/model.tar.gz")
		assert.Equal(t, data, got)
		assert.Equal(t, res.SHA256, out.Metadata["sha256"])
		assert.Equal(t, crc32Base64(data), aws.ToString(out.ChecksumCRC32))
		assert.Equal(t, res.ETag, aws.ToString(out.ETag))
	})

	t.Run("SHA256 checksum", func(t *testing.T) {
		path, data := randomFile(t, 64<<10)
		res, err := Push(ctx, c, PushOptions{Bucket: "models", Key: "sha/blob", Path: path, Checksum: "sha256"})
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		assert.Equal(t, "SHA256", res.ChecksumAlgorithm)
		assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), res.Checksum)
		out, got := getObject(t, c, "models", "sha/blob")
		assert.Equal(t, data, got)
		assert.Equal(t, res.Checksum, aws.ToString(out.ChecksumSHA256))
	})

	t.Run("multipart", func(t *testing.T) {
		path, data := randomFile(t, 12<<20)
		res, err := Push(ctx, c, PushOptions{Bucket: "models", Key: "big/model.tar.gz", Path: path, PartSize: 5 << 20, PathStyle: true})
		require.NoError(t, err)
		assert.Equal(t, 3, res.Parts)
		assert.Equal(t, int64(12<<20), res.Size)
		assert.True(t, strings.HasSuffix(strings.Trim(res.ETag, `"`), "-3"), "multipart ETag: %s", res.ETag)
		assert.Equal(t, compositeCRC32(data, 5<<20), res.Checksum)

		out, got := getObject(t, c, "models", "big/model.tar.gz")
		assert.True(t, bytes.Equal(data, got), "downloaded bytes differ")
		gotSum := sha256.Sum256(got)
		assert.Equal(t, res.SHA256, hex.EncodeToString(gotSum[:]))
		assert.Equal(t, res.SHA256, out.Metadata["sha256"])
		if v := aws.ToString(out.ChecksumCRC32); v != "" {
			assert.Equal(t, res.Checksum, v)
		}
		assert.Empty(t, pendingUploads(t, c, "models", "big/model.tar.gz"))
	})

	t.Run("read error aborts the upload", func(t *testing.T) {
		_, data := randomFile(t, 12<<20)
		body := &faultyReader{data: data, failAt: 7 << 20}
		_, err := pushBody(ctx, c, PushOptions{Bucket: "models", Key: "broken/model.tar.gz", PartSize: 5 << 20}, body, -1, nil)
		require.Error(t, err)
		var perr *PushError
		require.True(t, errors.As(err, &perr), "%T: %v", err, err)
		assert.NotEmpty(t, perr.UploadID)
		assert.NoError(t, perr.AbortErr)
		assert.Contains(t, err.Error(), "the object was not written")
		assert.Contains(t, err.Error(), "aborted")
		objectMissing(t, c, "models", "broken/model.tar.gz")
		assert.Empty(t, pendingUploads(t, c, "models", "broken/model.tar.gz"), "the multipart upload was left behind")
	})

	t.Run("refusals", func(t *testing.T) {
		path, _ := randomFile(t, 10)
		_, err := Push(ctx, c, PushOptions{Bucket: "models", Key: "x", Path: path, PartSize: 1 << 20})
		assert.ErrorContains(t, err, "part size")
		_, err = Push(ctx, c, PushOptions{Bucket: "models", Key: "x", Path: path, Checksum: "md5"})
		assert.ErrorContains(t, err, "unknown checksum")
		_, err = Push(ctx, c, PushOptions{Bucket: "no-such-bucket", Key: "x", Path: path})
		var perr *PushError
		assert.True(t, errors.As(err, &perr), "%v", err)
		_, err = Push(ctx, c, PushOptions{Bucket: "models", Key: "x", Path: filepath.Dir(path)})
		assert.ErrorContains(t, err, "not a regular file")
	})

	t.Run("checksums only when required", func(t *testing.T) {
		path, data := randomFile(t, 6<<20)
		wr := testClients(t, minio.URL(), func(o *AWSOptions) { o.ChecksumWhenRequired = true }).S3
		res, err := Push(ctx, wr, PushOptions{Bucket: "models", Key: "plain/blob", Path: path, PartSize: 5 << 20,
			Checksum: "none", ChecksumWhenRequired: true})
		require.NoError(t, err)
		assert.Equal(t, 2, res.Parts)
		assert.Empty(t, res.Checksum)
		_, got := getObject(t, c, "models", "plain/blob")
		assert.True(t, bytes.Equal(data, got))
	})
}

// faultyReader fails once failAt bytes have been read.
type faultyReader struct {
	data   []byte
	off    int
	failAt int
}

func (r *faultyReader) Read(p []byte) (int, error) {
	if r.off >= r.failAt {
		return 0, errors.New("disk read error")
	}
	n := copy(p, r.data[r.off:min(len(r.data), r.failAt)])
	r.off += n
	return n, nil
}

// gatedReader serves data up to gate bytes, then blocks until open is
// closed; reachedGate is closed when it blocks.
type gatedReader struct {
	data        []byte
	off         int
	gate        int
	reachedGate chan struct{}
	open        chan struct{}
	once        sync.Once
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	if r.off >= r.gate {
		r.once.Do(func() { close(r.reachedGate) })
		<-r.open
	}
	end := len(r.data)
	if r.off < r.gate {
		end = r.gate
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

// TestPushServerKilled kills MinIO after the first part of a multipart
// upload is stored: the push fails clearly, and once MinIO is back on the
// same data no object exists under the key.
func TestPushServerKilled(t *testing.T) {
	minio := startMinIO(t)
	useTestAWSEnv(t)
	c := testClients(t, minio.URL(), func(o *AWSOptions) { o.MaxAttempts = 1 }).S3
	ctx := context.Background()
	createBucket(t, c, "models")
	const key = "crash/model.tar.gz"
	_, data := randomFile(t, 12<<20)
	body := &gatedReader{data: data, gate: 6 << 20, reachedGate: make(chan struct{}), open: make(chan struct{})}

	type result struct {
		res PushResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := pushBody(ctx, c, PushOptions{Bucket: "models", Key: key, PartSize: 5 << 20, Concurrency: 1}, body, -1, nil)
		done <- result{res, err}
	}()
	select {
	case <-body.reachedGate:
	case r := <-done:
		t.Fatalf("push ended before the gate: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("the upload never read past the first part")
	}
	// Wait until MinIO holds part 1, then crash it.
	var uploadID string
	require.Eventually(t, func() bool {
		ids := pendingUploads(t, c, "models", key)
		if len(ids) != 1 {
			return false
		}
		parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("models"), Key: aws.String(key), UploadId: aws.String(ids[0])})
		if err != nil || len(parts.Parts) == 0 {
			return false
		}
		uploadID = ids[0]
		return true
	}, 20*time.Second, 50*time.Millisecond, "part 1 never arrived")
	minio.kill()
	close(body.open)

	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("push did not return after the server died")
	}
	require.Error(t, r.err)
	assert.Empty(t, r.res.ETag)
	var perr *PushError
	require.True(t, errors.As(r.err, &perr), "%T: %v", r.err, r.err)
	assert.Equal(t, uploadID, perr.UploadID)
	assert.Error(t, perr.AbortErr, "the abort cannot have reached a dead server")
	msg := r.err.Error()
	assert.Contains(t, msg, "push s3://models/"+key)
	assert.Contains(t, msg, "the object was not written")
	assert.Contains(t, msg, "abort-multipart-upload --bucket models --key "+key+" --upload-id "+uploadID)

	minio.restart()
	objectMissing(t, c, "models", key)
	// The stranded upload is there, and the suggested abort clears it.
	assert.Equal(t, []string{uploadID}, pendingUploads(t, c, "models", key))
	require.NoError(t, abortUpload(c, "models", key, uploadID))
	assert.Empty(t, pendingUploads(t, c, "models", key))
	objectMissing(t, c, "models", key)
}

// TestSageMakerOnMoto runs the SageMaker calls against moto_server, with
// the channels in MinIO. The endpoints come from the SDK's own
// AWS_ENDPOINT_URL_* variables.
func TestSageMakerOnMoto(t *testing.T) {
	minio := startMinIO(t)
	moto := startMoto(t)
	useTestAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", minio.URL())
	t.Setenv("AWS_ENDPOINT_URL_SAGEMAKER", moto.URL())
	t.Setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", moto.URL())
	rec := newRecordingHTTP()
	c := testClients(t, "", func(o *AWSOptions) { o.HTTPClient = rec })
	ctx := context.Background()
	const role = "arn:aws:iam::123456789012:role/SageMakerRole"

	// Channels and model data on MinIO.
	createBucket(t, c.S3, "embtune")
	dataPath := filepath.Join(t.TempDir(), "train.jsonl")
	require.NoError(t, os.WriteFile(dataPath, []byte(`{"anchor": "q", "positive": "a"}`+"\n"), 0o644))
	up, err := Push(ctx, c.S3, PushOptions{Bucket: "embtune", Key: "data/train/train.jsonl", Path: dataPath})
	require.NoError(t, err)
	_, err = Push(ctx, c.S3, PushOptions{Bucket: "embtune", Key: "data/test/test.jsonl", Path: dataPath})
	require.NoError(t, err)
	channels := map[string]string{"training": "s3://embtune/data/train/", "test": "s3://embtune/data/test/test.jsonl"}
	require.NoError(t, CheckS3Inputs(ctx, c.S3, channels["training"], channels["test"], up.URI))
	err = CheckS3Inputs(ctx, c.S3, "s3://embtune/data/validation/")
	assert.ErrorContains(t, err, "no object there")

	spec := TrainingJobSpec{
		Name: "embtune-faq-spot", ImageURI: "123456789012.dkr.ecr.us-east-1.amazonaws.com/embtune:train", RoleARN: role,
		InstanceType: "ml.g5.xlarge", Channels: channels, OutputS3: "s3://embtune/output",
		Hyperparameters: map[string]string{"epochs": "3", "preset": "default"},
		Spot:            true, MaxRuntime: 2 * time.Hour,
	}

	t.Run("training job, no wait", func(t *testing.T) {
		res, err := CreateTrainingJob(ctx, c.SageMaker, spec, false)
		require.NoError(t, err)
		assert.Contains(t, res.ARN, ":training-job/embtune-faq-spot")
		assert.Equal(t, "InProgress", res.Status)

		d, err := c.SageMaker.DescribeTrainingJob(ctx, &sm.DescribeTrainingJobInput{TrainingJobName: aws.String(spec.Name)})
		require.NoError(t, err)
		assert.Equal(t, spec.Hyperparameters, d.HyperParameters)
		assert.Equal(t, spec.ImageURI, aws.ToString(d.AlgorithmSpecification.TrainingImage))
		assert.Equal(t, role, aws.ToString(d.RoleArn))
		got := map[string]string{}
		for _, ch := range d.InputDataConfig {
			got[aws.ToString(ch.ChannelName)] = aws.ToString(ch.DataSource.S3DataSource.S3Uri)
		}
		assert.Equal(t, channels, got)
		assert.Equal(t, "s3://embtune/output", aws.ToString(d.OutputDataConfig.S3OutputPath))
		require.NotNil(t, d.CheckpointConfig)
		assert.Equal(t, "/opt/ml/checkpoints", aws.ToString(d.CheckpointConfig.LocalPath))
		assert.Equal(t, "s3://embtune/output/embtune-faq-spot/checkpoints", aws.ToString(d.CheckpointConfig.S3Uri))
		assert.True(t, aws.ToBool(d.EnableManagedSpotTraining))
		assert.Equal(t, int32(7200), aws.ToInt32(d.StoppingCondition.MaxRuntimeInSeconds))
		assert.Equal(t, int32(14400), aws.ToInt32(d.StoppingCondition.MaxWaitTimeInSeconds))
		assert.Equal(t, smtypes.TrainingInstanceTypeMlG5Xlarge, d.ResourceConfig.InstanceType)

		// moto replaces MetricDefinitions with its own canned one, so check
		// what was sent.
		var sent struct {
			AlgorithmSpecification struct {
				MetricDefinitions []struct{ Name, Regex string }
			}
		}
		require.NoError(t, json.Unmarshal(rec.body("CreateTrainingJob"), &sent))
		require.Len(t, sent.AlgorithmSpecification.MetricDefinitions, len(TrainingMetricDefinitions))
		for i, m := range TrainingMetricDefinitions {
			assert.Equal(t, m.Name, sent.AlgorithmSpecification.MetricDefinitions[i].Name)
			assert.Equal(t, m.Regex, sent.AlgorithmSpecification.MetricDefinitions[i].Regex)
		}
	})

	t.Run("training job, wait", func(t *testing.T) {
		s := spec
		s.Name, s.Spot, s.MaxRuntime = "embtune-faq-wait", false, 0
		s.CheckpointS3 = "s3://embtune/checkpoints/embtune-faq-wait"
		start := time.Now()
		res, err := CreateTrainingJob(ctx, c.SageMaker, s, true)
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 20*time.Second, "the waiter's first check is immediate")
		assert.Equal(t, "Completed", res.Status)
		assert.Equal(t, "s3://embtune/output/embtune-faq-wait/output/model.tar.gz", res.ModelArtifacts)
		d, err := DescribeTrainingJob(ctx, c.SageMaker, s.Name)
		require.NoError(t, err)
		assert.Equal(t, res.ARN, d.ARN)
		_, err = DescribeTrainingJob(ctx, c.SageMaker, "no-such-job")
		assert.Error(t, err)
	})

	deploy := DeploySpec{
		EndpointName: "embtune-faq", ImageURI: "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311",
		ModelDataS3: up.URI, RoleARN: role, InstanceType: "ml.m5.large",
		Environment: map[string]string{"SAGEMAKER_PROGRAM": "inference.py"},
	}

	t.Run("deploy instance endpoint", func(t *testing.T) {
		res, err := Deploy(ctx, c.SageMaker, deploy, true)
		require.NoError(t, err)
		assert.Equal(t, "InService", res.Status)
		assert.Contains(t, res.EndpointARN, ":endpoint/embtune-faq")
		m, err := c.SageMaker.DescribeModel(ctx, &sm.DescribeModelInput{ModelName: aws.String("embtune-faq")})
		require.NoError(t, err)
		assert.Equal(t, deploy.ImageURI, aws.ToString(m.PrimaryContainer.Image))
		assert.Equal(t, up.URI, aws.ToString(m.PrimaryContainer.ModelDataUrl))
		assert.Equal(t, deploy.Environment, m.PrimaryContainer.Environment)
		assert.Equal(t, role, aws.ToString(m.ExecutionRoleArn))
		cfg, err := c.SageMaker.DescribeEndpointConfig(ctx, &sm.DescribeEndpointConfigInput{EndpointConfigName: aws.String("embtune-faq")})
		require.NoError(t, err)
		require.Len(t, cfg.ProductionVariants, 1)
		v := cfg.ProductionVariants[0]
		assert.Equal(t, "AllTraffic", aws.ToString(v.VariantName))
		assert.Equal(t, smtypes.ProductionVariantInstanceTypeMlM5Large, v.InstanceType)
		assert.Equal(t, int32(1), aws.ToInt32(v.InitialInstanceCount))
		assert.Nil(t, v.ServerlessConfig)
	})

	t.Run("deploy serverless endpoint", func(t *testing.T) {
		s := deploy
		s.EndpointName, s.InstanceType = "embtune-faq-serverless", ""
		s.ModelName, s.EndpointConfigName = "embtune-faq-model-2", "embtune-faq-config-2"
		s.Serverless = &ServerlessSpec{MemoryMB: 3072, MaxConcurrency: 5}
		res, err := Deploy(ctx, c.SageMaker, s, true)
		require.NoError(t, err)
		assert.Equal(t, "InService", res.Status)
		cfg, err := c.SageMaker.DescribeEndpointConfig(ctx, &sm.DescribeEndpointConfigInput{EndpointConfigName: aws.String(s.EndpointConfigName)})
		require.NoError(t, err)
		v := cfg.ProductionVariants[0]
		require.NotNil(t, v.ServerlessConfig)
		assert.Equal(t, int32(3072), aws.ToInt32(v.ServerlessConfig.MemorySizeInMB))
		assert.Equal(t, int32(5), aws.ToInt32(v.ServerlessConfig.MaxConcurrency))
		assert.Empty(t, v.InstanceType)
		ep, err := c.SageMaker.DescribeEndpoint(ctx, &sm.DescribeEndpointInput{EndpointName: aws.String(s.EndpointName)})
		require.NoError(t, err)
		assert.Equal(t, s.EndpointConfigName, aws.ToString(ep.EndpointConfigName))

		bad := s
		bad.Serverless = &ServerlessSpec{MemoryMB: 1000, MaxConcurrency: 5}
		_, err = Deploy(ctx, c.SageMaker, bad, false)
		assert.ErrorContains(t, err, "serverless memory")
	})

	t.Run("failed deploy rolls back", func(t *testing.T) {
		s := deploy
		s.EndpointName, s.InstanceType = "embtune-faq-bad", "ml.no-such-type"
		_, err := Deploy(ctx, c.SageMaker, s, false)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "create endpoint config embtune-faq-bad")
		assert.Contains(t, err.Error(), "deleted again")
		_, err = c.SageMaker.DescribeModel(ctx, &sm.DescribeModelInput{ModelName: aws.String("embtune-faq-bad")})
		assert.Error(t, err, "the model of the failed deploy is still there")
	})

	t.Run("invoke", func(t *testing.T) {
		// moto answers InvokeEndpoint from a queue of canned bodies, one per
		// distinct request; it cannot run the model.
		moto.queueInvokeResults(t,
			`{"embeddings": [[0.6, 0.8], [1.0, 0.0]]}`,
			`[[0.0, 1.0], [1.0, 0.0]]`,
			`{"embeddings": [[1.0, 0.0]]}`,
			`not json`)
		v, err := Invoke(ctx, c.Runtime, "embtune-faq", []string{"How do I upgrade?", "apt-get dist-upgrade"})
		require.NoError(t, err)
		assert.Equal(t, [][]float32{{0.6, 0.8}, {1, 0}}, v)
		v, err = Invoke(ctx, c.Runtime, "embtune-faq", []string{"a", "b"})
		require.NoError(t, err)
		assert.Equal(t, [][]float32{{0, 1}, {1, 0}}, v)
		_, err = Invoke(ctx, c.Runtime, "embtune-faq", []string{"c", "d"})
		assert.ErrorContains(t, err, "1 vectors for 2 texts")
		_, err = Invoke(ctx, c.Runtime, "embtune-faq", []string{"e"})
		assert.ErrorContains(t, err, "not JSON")
		_, err = Invoke(ctx, c.Runtime, "embtune-faq", nil)
		assert.ErrorContains(t, err, "no texts")
	})

	t.Run("endpoint as an encoder", func(t *testing.T) {
		// Batches of 2: two InvokeEndpoint calls, answers kept in order.
		moto.queueInvokeResults(t,
			`{"embeddings": [[0.6, 0.8], [1.0, 0.0]]}`,
			`{"embeddings": [[0.0, 1.0]]}`)
		var enc embedding.Encoder = Endpoint{Runtime: c.Runtime, Name: "embtune-faq"}
		v, err := enc.Encode(ctx, []string{"q1", "q2", "q3"}, 2)
		require.NoError(t, err)
		assert.Equal(t, [][]float32{{0.6, 0.8}, {1, 0}, {0, 1}}, v)
		_, err = Endpoint{Runtime: c.Runtime}.Encode(ctx, []string{"x"}, 0)
		assert.ErrorContains(t, err, "endpoint name")
	})
}
