package sagemaker

// S3: s3:// URIs, uploads with the transfer manager (checksums, multipart
// aborts on failure), and checks that a job's inputs exist.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

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
