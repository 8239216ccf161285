package sagemaker

// AWS calls: S3 upload, training jobs, endpoints and invocation, with
// aws-sdk-go-v2.
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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
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

// ParseS3URI splits s3://bucket/key. The key may be empty (a bucket or
// prefix URI) unless needKey.
func ParseS3URI(uri string, needKey bool) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3:// URI", uri)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket", uri)
	}
	if needKey && key == "" {
		return "", "", fmt.Errorf("%q names no object key", uri)
	}
	return bucket, key, nil
}

// S3 limits on multipart uploads.
const (
	minPartSize     = 5 << 20
	maxPartSize     = 5 << 30
	defaultPartSize = 16 << 20
	maxParts        = 10000
)

// PushOptions describes one upload.
type PushOptions struct {
	Bucket string
	Key    string
	// Path is the local file to upload.
	Path string
	// PartSize is the multipart part size in bytes (default 16 MiB, at
	// least 5 MiB). Files up to one part go up in a single PUT; larger ones
	// as a multipart upload, raising the part size if needed to stay within
	// 10,000 parts.
	PartSize int64
	// Concurrency is the number of parts in flight (default 4).
	Concurrency int
	// PathStyle addresses the bucket in the path (MinIO and most
	// S3-compatible servers).
	PathStyle bool
	// Checksum is the content checksum sent with every part and checked by
	// the server: "CRC32" (default), "CRC32C", "SHA1", "SHA256", or "none".
	Checksum string
	// ChecksumWhenRequired stops the SDK from adding its default checksum
	// when Checksum is "none" (servers that reject the newer headers).
	ChecksumWhenRequired bool
	// ContentType of the object (default application/octet-stream).
	ContentType string
}

// PushResult describes an uploaded object.
type PushResult struct {
	URI  string `json:"uri"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
	// SHA256 is the hex digest of the local file, also stored as the
	// object's user metadata "sha256" (x-amz-meta-sha256).
	SHA256 string `json:"sha256,omitempty"`
	// ChecksumAlgorithm and Checksum are the S3 checksum of the object as
	// the server reported it (base64; "-N" marks a multipart object's
	// checksum of its N part checksums).
	ChecksumAlgorithm string `json:"checksum_algorithm,omitempty"`
	Checksum          string `json:"checksum,omitempty"`
	// Parts is 0 for a single PUT, else the number of parts.
	Parts int `json:"parts"`
}

// PushError is a failed upload. S3 creates an object only when a PUT or a
// CompleteMultipartUpload succeeds, so after a PushError the key holds what
// it held before. A multipart upload is aborted so that its parts are
// freed; AbortErr says when that failed too (the server was unreachable,
// say): the parts then stay, and are billed, until the upload is aborted or
// a lifecycle rule removes them.
type PushError struct {
	URI      string
	UploadID string
	AbortErr error
	Err      error
}

func (e *PushError) Error() string {
	if e.UploadID == "" {
		return fmt.Sprintf("push %s: %v; the object was not written", e.URI, e.Err)
	}
	if e.AbortErr == nil {
		return fmt.Sprintf("push %s: multipart upload failed: %v; the object was not written (upload %s aborted)", e.URI, e.Err, e.UploadID)
	}
	bucket, key, _ := ParseS3URI(e.URI, true)
	return fmt.Sprintf("push %s: multipart upload failed: %v; the object was not written, but aborting the upload failed too (%v): "+
		"its parts stay until `aws s3api abort-multipart-upload --bucket %s --key %s --upload-id %s` or a lifecycle rule removes them",
		e.URI, e.Err, e.AbortErr, bucket, key, e.UploadID)
}

func (e *PushError) Unwrap() error { return e.Err }

// Push uploads opts.Path to s3://Bucket/Key and returns the object's URI
// and ETag. Each part (or the single PUT) carries the chosen content
// checksum, which the server verifies before storing it, and the file's
// sha256 is stored as metadata. After the upload a HeadObject confirms the
// object's size. On failure the error is a *PushError and no object has
// been written under the key; a multipart upload is aborted.
func Push(ctx context.Context, client *s3.Client, opts PushOptions) (PushResult, error) {
	f, err := os.Open(opts.Path)
	if err != nil {
		return PushResult{}, fmt.Errorf("push: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return PushResult{}, fmt.Errorf("push: %w", err)
	}
	if !st.Mode().IsRegular() {
		return PushResult{}, fmt.Errorf("push: %s is not a regular file", opts.Path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return PushResult{}, fmt.Errorf("push: reading %s: %w", opts.Path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return PushResult{}, fmt.Errorf("push: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	res, err := pushBody(ctx, client, opts, f, st.Size(), map[string]string{"sha256": sum})
	if err == nil {
		res.SHA256 = sum
	}
	return res, err
}

// checksumAlgorithms maps PushOptions.Checksum to the SDK's names.
var checksumAlgorithms = map[string]tmtypes.ChecksumAlgorithm{
	"":       tmtypes.ChecksumAlgorithmCrc32,
	"CRC32":  tmtypes.ChecksumAlgorithmCrc32,
	"CRC32C": tmtypes.ChecksumAlgorithmCrc32c,
	"SHA1":   tmtypes.ChecksumAlgorithmSha1,
	"SHA256": tmtypes.ChecksumAlgorithmSha256,
	"NONE":   "",
}

// abortTimeout bounds the clean-up calls after a failed upload; they run
// even when ctx was cancelled.
const abortTimeout = 30 * time.Second

// pushBody uploads size bytes of body (size < 0: unknown).
func pushBody(ctx context.Context, client *s3.Client, opts PushOptions, body io.Reader, size int64, meta map[string]string) (PushResult, error) {
	uri := "s3://" + opts.Bucket + "/" + opts.Key
	res := PushResult{URI: uri, Size: size}
	if opts.Bucket == "" || opts.Key == "" {
		return res, errors.New("push: bucket and key are required")
	}
	alg, ok := checksumAlgorithms[strings.ToUpper(opts.Checksum)]
	if !ok {
		return res, fmt.Errorf("push: unknown checksum %q (CRC32, CRC32C, SHA1, SHA256 or none)", opts.Checksum)
	}
	part := opts.PartSize
	if part == 0 {
		part = defaultPartSize
	}
	if part < minPartSize || part > maxPartSize {
		return res, fmt.Errorf("push: part size %d is outside S3's limits (5 MiB to 5 GiB)", part)
	}
	if size > 0 && (size+part-1)/part > maxParts {
		part = (size + maxParts - 1) / maxParts
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = 4
	}
	if opts.PathStyle || opts.ChecksumWhenRequired {
		client = s3.New(client.Options(), func(o *s3.Options) {
			o.UsePathStyle = o.UsePathStyle || opts.PathStyle
			if opts.ChecksumWhenRequired {
				o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
				o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			}
		})
	}
	calc := aws.RequestChecksumCalculationWhenSupported
	if opts.ChecksumWhenRequired || alg == "" {
		calc = aws.RequestChecksumCalculationWhenRequired
	}
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = part
		// A body of at most one part goes up as a single PUT.
		o.MultipartUploadThreshold = part + 1
		o.Concurrency = conc
		o.ChecksumAlgorithm = alg
		o.RequestChecksumCalculation = calc
		o.FailTimeout = abortTimeout
	})
	contentType := opts.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	out, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket:            aws.String(opts.Bucket),
		Key:               aws.String(opts.Key),
		Body:              body,
		ContentType:       aws.String(contentType),
		Metadata:          meta,
		ChecksumAlgorithm: alg,
	})
	if err != nil {
		perr := &PushError{URI: uri, Err: err}
		var mpu transfermanager.MultipartUploadError
		if errors.As(err, &mpu) && mpu.UploadID() != "" {
			if cause := errors.Unwrap(mpu); cause != nil {
				perr.Err = cause
			}
			perr.UploadID = mpu.UploadID()
			perr.AbortErr = abortUpload(client, opts.Bucket, opts.Key, perr.UploadID)
		}
		return res, perr
	}
	res.ETag = aws.ToString(out.ETag)
	res.Parts = len(out.CompletedParts)
	res.ChecksumAlgorithm, res.Checksum = uploadChecksum(out)

	// The object exists now; confirm what the server holds.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	head, err := client.HeadObject(hctx, &s3.HeadObjectInput{Bucket: aws.String(opts.Bucket), Key: aws.String(opts.Key)})
	if err != nil {
		return res, fmt.Errorf("push %s: uploaded, but HeadObject failed: %w", uri, err)
	}
	if size >= 0 && aws.ToInt64(head.ContentLength) != size {
		return res, fmt.Errorf("push %s: uploaded %d bytes but the server holds %d", uri, size, aws.ToInt64(head.ContentLength))
	}
	res.Size = aws.ToInt64(head.ContentLength)
	return res, nil
}

// abortUpload aborts a multipart upload; an upload that is already gone
// counts as aborted.
func abortUpload(client *s3.Client, bucket, key, uploadID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	_, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	var nsu *s3types.NoSuchUpload
	if err == nil || errors.As(err, &nsu) {
		return nil
	}
	return err
}

func uploadChecksum(out *transfermanager.UploadObjectOutput) (string, string) {
	for _, c := range []struct {
		alg string
		v   *string
	}{
		{"CRC32", out.ChecksumCRC32}, {"CRC32C", out.ChecksumCRC32C}, {"CRC64NVME", out.ChecksumCRC64NVME},
		{"SHA1", out.ChecksumSHA1}, {"SHA256", out.ChecksumSHA256},
	} {
		if aws.ToString(c.v) != "" {
			return c.alg, *c.v
		}
	}
	return "", ""
}

// CheckS3Inputs confirms that each URI names an existing object, or a
// prefix with at least one object under it, before a job that would fail
// on it much later is paid for.
func CheckS3Inputs(ctx context.Context, client *s3.Client, uris ...string) error {
	for _, uri := range uris {
		bucket, key, err := ParseS3URI(uri, false)
		if err != nil {
			return err
		}
		if key != "" && !strings.HasSuffix(key, "/") {
			if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil {
				continue
			}
		}
		out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(key), MaxKeys: aws.Int32(1)})
		if err != nil {
			return fmt.Errorf("checking %s: %w", uri, err)
		}
		if len(out.Contents) == 0 {
			return fmt.Errorf("%s: no object there", uri)
		}
	}
	return nil
}

// MetricRegex is one of SageMaker's MetricDefinitions: the first capture
// group of Regex, matched against the training job's log lines, becomes a
// CloudWatch metric named Name.
type MetricRegex struct {
	Name  string
	Regex string
}

// TrainingMetricDefinitions scrape the log lines `embtune train` prints
// (slog's text format) in the training container:
//
//	msg=step step=12 epoch=2.00 loss=0.103313 lr=3.981e-05 grad_norm=5.6125 pairs_per_sec=7.89
//	msg="base model" ndcg@10=0.7496 mrr@10=0.7012 accuracy@1=0.5417
//	msg="tuned model" ndcg@10=0.7866 mrr@10=0.7400 accuracy@1=0.6250
//	msg=fold fold=1 base_ndcg@10=0.7412 tuned_ndcg@10=0.7866
//
// The regexes use only syntax that Go's RE2 and SageMaker's matcher read
// alike (no look-around, no named groups).
var TrainingMetricDefinitions = []MetricRegex{
	{"train:loss", `msg=step .*\bloss=([-+0-9.eE]+|NaN)`},
	{"train:lr", `msg=step .*\blr=([-+0-9.eE]+)`},
	{"train:grad_norm", `msg=step .*\bgrad_norm=([-+0-9.eE]+|NaN|[+-]Inf)`},
	{"train:epoch", `msg=step .*\bepoch=([0-9.]+)`},
	{"train:pairs_per_sec", `msg=step .*\bpairs_per_sec=([0-9.eE+-]+)`},
	{"eval:ndcg@10", `(?:^|\s)ndcg@10=([0-9.eE+-]+)`},
	{"eval:base_ndcg@10", `msg="base model" .*\bndcg@10=([0-9.eE+-]+)`},
	{"eval:tuned_ndcg@10", `msg="tuned model" .*\bndcg@10=([0-9.eE+-]+)`},
	{"eval:tuned_mrr@10", `msg="tuned model" .*\bmrr@10=([0-9.eE+-]+)`},
	{"eval:tuned_accuracy@1", `msg="tuned model" .*\baccuracy@1=([0-9.eE+-]+)`},
	{"eval:fold_tuned_ndcg@10", `msg=fold .*\btuned_ndcg@10=([0-9.eE+-]+)`},
}

func metricDefinitions() []smtypes.MetricDefinition {
	out := make([]smtypes.MetricDefinition, len(TrainingMetricDefinitions))
	for i, m := range TrainingMetricDefinitions {
		out[i] = smtypes.MetricDefinition{Name: aws.String(m.Name), Regex: aws.String(m.Regex)}
	}
	return out
}

// TrainingCheckpointPath is CheckpointConfig.LocalPath: SageMaker syncs it
// with CheckpointS3 during the job and restores it when a Spot job restarts.
const TrainingCheckpointPath = "/opt/ml/checkpoints"

// TrainingJobSpec describes a SageMaker training job that runs embtune's
// training image.
type TrainingJobSpec struct {
	Name         string
	ImageURI     string
	RoleARN      string
	InstanceType string
	// InstanceCount defaults to 1; more hosts train data-parallel over c10d.
	InstanceCount int32
	// VolumeSizeGB is the ML storage volume (default 30).
	VolumeSizeGB int32
	// Channels maps channel names to S3 prefixes or objects: "training"
	// holds the pairs, "test" optional held-out pairs, "model" an optional
	// base model folder.
	Channels map[string]string
	// OutputS3 is where SageMaker writes NAME/output/model.tar.gz.
	OutputS3        string
	Hyperparameters map[string]string
	// CheckpointS3 is synced with TrainingCheckpointPath. With Spot and no
	// CheckpointS3, OutputS3/NAME/checkpoints is used.
	CheckpointS3 string
	// Spot runs on managed Spot capacity; MaxWait (default 2 × MaxRuntime)
	// bounds the run including the waits for capacity.
	Spot bool
	// MaxRuntime bounds the training time (default 24 h).
	MaxRuntime time.Duration
	MaxWait    time.Duration
	// Environment is passed to the container.
	Environment map[string]string
}

// TrainingJobResult is a training job's state.
type TrainingJobResult struct {
	Name            string             `json:"name"`
	ARN             string             `json:"arn"`
	Status          string             `json:"status"`
	SecondaryStatus string             `json:"secondary_status,omitempty"`
	FailureReason   string             `json:"failure_reason,omitempty"`
	ModelArtifacts  string             `json:"model_artifacts,omitempty"`
	FinalMetrics    map[string]float64 `json:"final_metrics,omitempty"`
}

var sageMakerNameRE = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

func checkSageMakerName(kind, name string) error {
	if !sageMakerNameRE.MatchString(name) {
		return fmt.Errorf("%s %q: SageMaker names are 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit", kind, name)
	}
	return nil
}

func checkRole(role string) error {
	if !strings.HasPrefix(role, "arn:") || !strings.Contains(role, ":role/") {
		return fmt.Errorf("role %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", role)
	}
	return nil
}

func durationSeconds(d time.Duration) int32 {
	return int32(min(math.Ceil(d.Seconds()), math.MaxInt32))
}

// trainingJobInput validates spec and builds the request.
func trainingJobInput(spec TrainingJobSpec) (*sm.CreateTrainingJobInput, error) {
	if err := checkSageMakerName("training job", spec.Name); err != nil {
		return nil, err
	}
	if spec.ImageURI == "" {
		return nil, errors.New("training job: an image URI is required")
	}
	if err := checkRole(spec.RoleARN); err != nil {
		return nil, err
	}
	if spec.InstanceType == "" {
		return nil, errors.New("training job: an instance type is required (ml.g5.xlarge, ml.m5.xlarge, …)")
	}
	if len(spec.Channels) == 0 {
		return nil, errors.New("training job: at least the \"training\" channel is required")
	}
	if _, _, err := ParseS3URI(spec.OutputS3, false); err != nil {
		return nil, fmt.Errorf("training job output: %w", err)
	}
	count := spec.InstanceCount
	if count == 0 {
		count = 1
	}
	volume := spec.VolumeSizeGB
	if volume == 0 {
		volume = 30
	}
	runtime := spec.MaxRuntime
	if runtime == 0 {
		runtime = 24 * time.Hour
	}
	stop := &smtypes.StoppingCondition{MaxRuntimeInSeconds: aws.Int32(durationSeconds(runtime))}
	checkpoint := spec.CheckpointS3
	if spec.Spot {
		wait := spec.MaxWait
		if wait == 0 {
			wait = 2 * runtime
		}
		if wait < runtime {
			return nil, fmt.Errorf("training job: max wait %s is shorter than max runtime %s (Spot needs max wait ≥ max runtime)", wait, runtime)
		}
		stop.MaxWaitTimeInSeconds = aws.Int32(durationSeconds(wait))
		if checkpoint == "" {
			checkpoint = strings.TrimSuffix(spec.OutputS3, "/") + "/" + spec.Name + "/checkpoints"
		}
	} else if spec.MaxWait != 0 {
		return nil, errors.New("training job: max wait applies to Spot jobs only")
	}
	names := make([]string, 0, len(spec.Channels))
	for n := range spec.Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	var channels []smtypes.Channel
	for _, n := range names {
		uri := spec.Channels[n]
		if _, _, err := ParseS3URI(uri, false); err != nil {
			return nil, fmt.Errorf("channel %s: %w", n, err)
		}
		channels = append(channels, smtypes.Channel{
			ChannelName: aws.String(n),
			InputMode:   smtypes.TrainingInputModeFile,
			DataSource: &smtypes.DataSource{S3DataSource: &smtypes.S3DataSource{
				S3DataType:             smtypes.S3DataTypeS3Prefix,
				S3Uri:                  aws.String(uri),
				S3DataDistributionType: smtypes.S3DataDistributionFullyReplicated,
			}},
		})
	}
	for k, v := range spec.Hyperparameters {
		if len(k) > 256 || len(v) > 2500 {
			return nil, fmt.Errorf("hyperparameter %q: SageMaker allows 256-character names and 2,500-character values", k)
		}
	}
	in := &sm.CreateTrainingJobInput{
		TrainingJobName: aws.String(spec.Name),
		RoleArn:         aws.String(spec.RoleARN),
		AlgorithmSpecification: &smtypes.AlgorithmSpecification{
			TrainingImage:                    aws.String(spec.ImageURI),
			TrainingInputMode:                smtypes.TrainingInputModeFile,
			MetricDefinitions:                metricDefinitions(),
			EnableSageMakerMetricsTimeSeries: aws.Bool(true),
		},
		InputDataConfig:           channels,
		OutputDataConfig:          &smtypes.OutputDataConfig{S3OutputPath: aws.String(spec.OutputS3)},
		ResourceConfig:            &smtypes.ResourceConfig{InstanceType: smtypes.TrainingInstanceType(spec.InstanceType), InstanceCount: aws.Int32(count), VolumeSizeInGB: aws.Int32(volume)},
		StoppingCondition:         stop,
		HyperParameters:           spec.Hyperparameters,
		EnableManagedSpotTraining: aws.Bool(spec.Spot),
		Environment:               spec.Environment,
	}
	if checkpoint != "" {
		if _, _, err := ParseS3URI(checkpoint, false); err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
		in.CheckpointConfig = &smtypes.CheckpointConfig{S3Uri: aws.String(checkpoint), LocalPath: aws.String(TrainingCheckpointPath)}
	}
	return in, nil
}

// CreateTrainingJob starts a training job. With wait it blocks until the
// job completes, stops or fails (the SDK's TrainingJobCompletedOrStopped
// waiter, bounded by the job's own limits plus an hour); a failed or stopped
// job is an error carrying SageMaker's FailureReason.
func CreateTrainingJob(ctx context.Context, client *sm.Client, spec TrainingJobSpec, wait bool) (TrainingJobResult, error) {
	res := TrainingJobResult{Name: spec.Name}
	in, err := trainingJobInput(spec)
	if err != nil {
		return res, err
	}
	out, err := client.CreateTrainingJob(ctx, in)
	if err != nil {
		return res, fmt.Errorf("create training job %s: %w", spec.Name, err)
	}
	res.ARN = aws.ToString(out.TrainingJobArn)
	res.Status = string(smtypes.TrainingJobStatusInProgress)
	if !wait {
		return res, nil
	}
	limit := time.Duration(aws.ToInt32(in.StoppingCondition.MaxRuntimeInSeconds)) * time.Second
	if w := aws.ToInt32(in.StoppingCondition.MaxWaitTimeInSeconds); w > 0 {
		limit = time.Duration(w) * time.Second
	}
	return WaitTrainingJob(ctx, client, spec.Name, limit+time.Hour)
}

// WaitTrainingJob waits up to maxWait for a training job to complete, stop
// or fail, and returns its final state; a failed or stopped job is an error.
func WaitTrainingJob(ctx context.Context, client *sm.Client, name string, maxWait time.Duration) (TrainingJobResult, error) {
	w := sm.NewTrainingJobCompletedOrStoppedWaiter(client, func(o *sm.TrainingJobCompletedOrStoppedWaiterOptions) {
		o.MinDelay = 30 * time.Second
		o.MaxDelay = 5 * time.Minute
	})
	_, werr := w.WaitForOutput(ctx, &sm.DescribeTrainingJobInput{TrainingJobName: aws.String(name)}, maxWait)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	res, err := DescribeTrainingJob(dctx, client, name)
	if err != nil {
		if werr != nil {
			return res, fmt.Errorf("training job %s: %w", name, werr)
		}
		return res, err
	}
	return trainingOutcome(name, res, werr)
}

// trainingOutcome judges a training job's state after waiting: only a
// completed job is a success.
func trainingOutcome(name string, res TrainingJobResult, werr error) (TrainingJobResult, error) {
	switch smtypes.TrainingJobStatus(res.Status) {
	case smtypes.TrainingJobStatusCompleted:
		return res, nil
	case smtypes.TrainingJobStatusFailed, smtypes.TrainingJobStatusStopped:
		reason := res.FailureReason
		if reason == "" {
			reason = "no reason given"
		}
		return res, fmt.Errorf("training job %s %s: %s", name, strings.ToLower(res.Status), reason)
	}
	if werr == nil {
		werr = errors.New("the waiter returned early")
	}
	return res, fmt.Errorf("training job %s is still %s: %w", name, res.Status, werr)
}

// DescribeTrainingJob returns a training job's state.
func DescribeTrainingJob(ctx context.Context, client *sm.Client, name string) (TrainingJobResult, error) {
	out, err := client.DescribeTrainingJob(ctx, &sm.DescribeTrainingJobInput{TrainingJobName: aws.String(name)})
	if err != nil {
		return TrainingJobResult{Name: name}, fmt.Errorf("describe training job %s: %w", name, err)
	}
	return trainingJobResult(out), nil
}

func trainingJobResult(out *sm.DescribeTrainingJobOutput) TrainingJobResult {
	res := TrainingJobResult{
		Name:            aws.ToString(out.TrainingJobName),
		ARN:             aws.ToString(out.TrainingJobArn),
		Status:          string(out.TrainingJobStatus),
		SecondaryStatus: string(out.SecondaryStatus),
		FailureReason:   aws.ToString(out.FailureReason),
	}
	if out.ModelArtifacts != nil {
		res.ModelArtifacts = aws.ToString(out.ModelArtifacts.S3ModelArtifacts)
	}
	for _, m := range out.FinalMetricDataList {
		if res.FinalMetrics == nil {
			res.FinalMetrics = map[string]float64{}
		}
		res.FinalMetrics[aws.ToString(m.MetricName)] = float64(aws.ToFloat32(m.Value))
	}
	return res
}

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
