package main

// `embtune package` and `embtune sagemaker push|train-job|deploy|invoke`.
//
//	embtune package --model-dir OUT --output model.tar.gz [--name NAME] [--fast] [--no-code]
//	embtune sagemaker push --bucket B --key K --file model.tar.gz [--part-size-mib 16] [--checksum CRC32|SHA256|none]
//	embtune sagemaker train-job --name N --image URI --role ARN --instance-type ml.g5.xlarge \
//	    --train s3://B/data/ [--test s3://…] [--channel NAME=s3://…] --output s3://B/output \
//	    [--hyperparameter epochs=3 …] [--spot [--max-wait 48h]] [--max-runtime 24h] [--checkpoint s3://…] [--wait]
//	embtune sagemaker deploy --name ENDPOINT --image URI --model-data s3://B/model.tar.gz --role ARN \
//	    (--instance-type ml.m5.large [--instance-count 1] | --serverless-memory 2048 --serverless-concurrency 5) \
//	    [--env K=V …] [--wait]
//	embtune sagemaker invoke --endpoint ENDPOINT [TEXT …] [-- TEXT …] < texts.txt > vectors.jsonl
//
// AWS credentials come from the SDK's default chain only; --endpoint-url or
// the AWS_ENDPOINT_URL* variables point the calls at other servers.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/embtune/embtune/sagemaker"
)

func runPackage(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("package")
	dir := fs.String("model-dir", "", "trained output folder (embtune train --output): model.pt and the sentence-transformers files")
	output := fs.String("output", "model.tar.gz", "archive to write")
	name := fs.String("name", "", "model name recorded in the manifest (default: the folder's name)")
	fast := fs.Bool("fast", false, "faster, slightly weaker gzip compression")
	noCode := fs.Bool("no-code", false, "leave out code/inference.py (for the Hugging Face container's own pipeline)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		return usageError("give --model-dir DIR (and --output FILE)")
	}
	man, err := sagemaker.PackageModel(*dir, *output, sagemaker.PackageOptions{ModelName: *name, Fast: *fast, NoCode: *noCode})
	if err != nil {
		return err
	}
	st, err := os.Stat(*output)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s: %d files, %.1f MiB, model %s, dim %d, max_seq_length %d\n",
		*output, len(man.Files)+1, float64(st.Size())/(1<<20), man.Model, man.Dim, man.MaxSeqLength)
	return err
}

// smSubcommands are the `embtune sagemaker` subcommands.
var smSubcommands = []struct{ name, summary string }{
	{"push", "upload a file (model.tar.gz, training data) to S3, multipart with checksums"},
	{"train-job", "start a SageMaker training job with embtune's training image"},
	{"deploy", "create a model, endpoint configuration and endpoint"},
	{"invoke", "embed texts on an endpoint; one JSON array per output line"},
	{"batch-embed", "embed JSON Lines files in S3 with a Batch Transform job"},
}

func smUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: embtune sagemaker SUBCOMMAND [flags]")
	fmt.Fprintf(w, "\n%s\n\n", summaryOf("sagemaker"))
	for _, c := range smSubcommands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "Run 'embtune sagemaker SUBCOMMAND --help' for its flags.")
	fmt.Fprintln(w, "Credentials: the AWS SDK's default chain (environment, profiles, SSO, roles).")
	fmt.Fprintln(w, "Endpoints: --endpoint-url, or AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 / _SAGEMAKER / _SAGEMAKER_RUNTIME.")
}

func runSageMaker(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		smUsage(usageOutput)
		return usageError("give a subcommand")
	}
	switch args[0] {
	case "-h", "--help", "help":
		smUsage(usageOutput)
		return flag.ErrHelp
	case "push":
		return smPush(ctx, args[1:], stdout)
	case "train-job":
		return smTrainJob(ctx, args[1:], stdout)
	case "deploy":
		return smDeploy(ctx, args[1:], stdout)
	case "invoke":
		return smInvoke(ctx, args[1:], stdin, stdout)
	case "batch-embed":
		return smBatchEmbed(ctx, args[1:], stdout)
	}
	smUsage(usageOutput)
	return usageError("unknown subcommand %q", args[0])
}

// smAWSFlags are the connection flags every subcommand shares.
type smAWSFlags struct {
	region, profile, endpoint string
	pathStyle, whenRequired   bool
}

func (a *smAWSFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	fs.StringVar(&a.profile, "profile", "", "shared-config profile (default: AWS_PROFILE or default)")
	fs.StringVar(&a.endpoint, "endpoint-url", "", "send every AWS call here (MinIO, LocalStack, moto); default: AWS_ENDPOINT_URL*")
	fs.BoolVar(&a.pathStyle, "path-style", false, "path-style S3 addressing (most S3-compatible servers need it)")
	fs.BoolVar(&a.whenRequired, "checksum-when-required", false, "send the SDK's default checksums only when required (older S3-compatible servers)")
}

func (a *smAWSFlags) clients(ctx context.Context) (sagemaker.AWSClients, error) {
	return sagemaker.NewAWSClients(ctx, sagemaker.AWSOptions{
		Region: a.region, Profile: a.profile, EndpointURL: a.endpoint,
		S3PathStyle: a.pathStyle, ChecksumWhenRequired: a.whenRequired,
	})
}

// smKV collects repeated KEY=VALUE flags.
type smKV map[string]string

func (m smKV) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (m smKV) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if _, dup := m[k]; dup {
		return fmt.Errorf("%s given twice", k)
	}
	m[k] = v
	return nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func smPush(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("sagemaker push")
	var af smAWSFlags
	af.register(fs)
	bucket := fs.String("bucket", "", "S3 bucket")
	key := fs.String("key", "", "object key (default: the file's name)")
	uri := fs.String("to", "", "s3://BUCKET/KEY, instead of --bucket and --key")
	file := fs.String("file", "", "local file to upload")
	partMiB := fs.Int64("part-size-mib", 16, "multipart part size in MiB (5 to 5120); files up to one part go up in one PUT")
	conc := fs.Int("concurrency", 4, "parts in flight")
	checksum := fs.String("checksum", "CRC32", "content checksum the server verifies: CRC32, CRC32C, SHA1, SHA256 or none")
	contentType := fs.String("content-type", "", "Content-Type (default application/octet-stream)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		return usageError("give --file FILE and --bucket B [--key K], or --to s3://B/K")
	}
	if *uri != "" {
		if *bucket != "" || *key != "" {
			return usageError("give either --to or --bucket/--key")
		}
		var err error
		if *bucket, *key, err = sagemaker.ParseS3URI(*uri, true); err != nil {
			return usageError("%v", err)
		}
	}
	if *bucket == "" {
		return usageError("--bucket is required")
	}
	if *key == "" {
		*key = filepath.Base(*file)
	}
	c, err := af.clients(ctx)
	if err != nil {
		return err
	}
	res, err := sagemaker.Push(ctx, c.S3, sagemaker.PushOptions{
		Bucket: *bucket, Key: *key, Path: *file, PartSize: *partMiB << 20, Concurrency: *conc,
		PathStyle: af.pathStyle, Checksum: *checksum, ChecksumWhenRequired: af.whenRequired, ContentType: *contentType,
	})
	if err != nil {
		return err
	}
	return printJSON(stdout, res)
}

func smTrainJob(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("sagemaker train-job")
	var af smAWSFlags
	af.register(fs)
	var spec sagemaker.TrainingJobSpec
	fs.StringVar(&spec.Name, "name", "", "training job name (unique in the account and region)")
	fs.StringVar(&spec.ImageURI, "image", "", "embtune training image in ECR")
	fs.StringVar(&spec.RoleARN, "role", "", "IAM role SageMaker assumes (S3 read/write, ECR pull, CloudWatch logs)")
	fs.StringVar(&spec.InstanceType, "instance-type", "ml.c6i.2xlarge", "training instance type (the Dockerfile builds a CPU image)")
	count := fs.Int("instance-count", 1, "instances: more than 1 trains data-parallel across hosts (algo-1 is rank 0 and writes the model)")
	volume := fs.Int("volume-size", 30, "ML storage volume, GB")
	train := fs.String("train", "", "s3:// URI of the training pairs (the \"training\" channel)")
	test := fs.String("test", "", "s3:// URI of held-out pairs (the \"test\" channel; optional)")
	channels := smKV{}
	fs.Var(channels, "channel", "another channel, NAME=s3://… (repeatable; \"model\" supplies a base model folder)")
	fs.StringVar(&spec.OutputS3, "output", "", "s3:// prefix for NAME/output/model.tar.gz")
	fs.StringVar(&spec.CheckpointS3, "checkpoint", "", "s3:// prefix synced with /opt/ml/checkpoints (Spot default: OUTPUT/NAME/checkpoints)")
	hp := smKV{}
	fs.Var(hp, "hyperparameter", "KEY=VALUE passed to the training container as an `embtune train` flag (repeatable)")
	env := smKV{}
	fs.Var(env, "env", "KEY=VALUE environment variable for the container (repeatable)")
	fs.BoolVar(&spec.Spot, "spot", false, "managed Spot training (resumes from checkpoints after an interruption)")
	fs.DurationVar(&spec.MaxRuntime, "max-runtime", 24*time.Hour, "stop training after this long")
	fs.DurationVar(&spec.MaxWait, "max-wait", 0, "Spot: give up after this long including waits for capacity (default 2 × max-runtime)")
	wait := fs.Bool("wait", false, "wait for the job to complete; a failed job's reason is printed")
	noCheck := fs.Bool("no-check", false, "skip checking the hyperparameter names and that the channels exist in S3")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	spec.InstanceCount, spec.VolumeSizeGB = int32(*count), int32(*volume)
	spec.Channels = map[string]string{}
	for k, v := range channels {
		spec.Channels[k] = v
	}
	for name, uri := range map[string]string{"training": *train, "test": *test} {
		if uri == "" {
			continue
		}
		if _, dup := spec.Channels[name]; dup {
			return usageError("channel %q given twice", name)
		}
		spec.Channels[name] = uri
	}
	if spec.Name == "" || spec.ImageURI == "" || spec.RoleARN == "" || spec.OutputS3 == "" || spec.Channels["training"] == "" {
		return usageError("--name, --image, --role, --train and --output are required")
	}
	if len(hp) > 0 {
		spec.Hyperparameters = hp
	}
	if len(env) > 0 {
		spec.Environment = env
	}
	c, err := af.clients(ctx)
	if err != nil {
		return err
	}
	if !*noCheck {
		if _, err := sagemaker.ParseHyperparameters(hp); err != nil {
			return usageError("%v (--no-check for another image)", err)
		}
		uris := make([]string, 0, len(spec.Channels))
		for _, u := range spec.Channels {
			uris = append(uris, u)
		}
		sort.Strings(uris)
		if err := sagemaker.CheckS3Inputs(ctx, c.S3, uris...); err != nil {
			return fmt.Errorf("%w (--no-check skips this check)", err)
		}
	}
	res, err := sagemaker.CreateTrainingJob(ctx, c.SageMaker, spec, *wait)
	// A job that was created is worth printing even when waiting for it
	// failed (its status and failure reason); nothing else is.
	return printUnlessFailed(stdout, res, err, res.ARN != "")
}

// printUnlessFailed prints res as JSON when the call succeeded, or when it
// failed but left something behind worth reporting (exists), and returns
// the call's error first.
func printUnlessFailed(stdout io.Writer, res any, err error, exists bool) error {
	if err == nil || exists {
		if perr := printJSON(stdout, res); err == nil {
			err = perr
		}
	}
	return err
}

func smDeploy(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("sagemaker deploy")
	var af smAWSFlags
	af.register(fs)
	var spec sagemaker.DeploySpec
	fs.StringVar(&spec.EndpointName, "name", "", "endpoint name")
	fs.StringVar(&spec.ModelName, "model-name", "", "SageMaker model name (default: the endpoint's)")
	fs.StringVar(&spec.EndpointConfigName, "endpoint-config-name", "", "endpoint configuration name (default: the endpoint's)")
	fs.StringVar(&spec.ImageURI, "image", "", "inference image: AWS PyTorch or Hugging Face inference, TEI, or embtune's")
	fs.StringVar(&spec.ModelDataS3, "model-data", "", "s3:// URI of model.tar.gz (embtune package, then push)")
	fs.StringVar(&spec.RoleARN, "role", "", "IAM role SageMaker assumes (S3 read, ECR pull)")
	fs.StringVar(&spec.InstanceType, "instance-type", "", "instance type, e.g. ml.m5.large (or use --serverless-memory)")
	count := fs.Int("instance-count", 0, "initial instance count (default 1)")
	memory := fs.Int("serverless-memory", 0, "serverless endpoint memory, MB (1024 to 6144, steps of 1024)")
	concurrency := fs.Int("serverless-concurrency", 5, "serverless endpoint max concurrent invocations (1 to 200)")
	env := smKV{}
	fs.Var(env, "env", "KEY=VALUE environment variable for the container (repeatable)")
	wait := fs.Bool("wait", false, "wait until the endpoint is InService")
	fs.DurationVar(&spec.WaitTimeout, "wait-timeout", 30*time.Minute, "give up waiting after this long")
	noCheck := fs.Bool("no-check", false, "skip checking that the model data exists in S3")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if spec.EndpointName == "" || spec.ImageURI == "" || spec.ModelDataS3 == "" || spec.RoleARN == "" {
		return usageError("--name, --image, --model-data and --role are required")
	}
	spec.InitialInstanceCount = int32(*count)
	if *memory != 0 {
		spec.Serverless = &sagemaker.ServerlessSpec{MemoryMB: int32(*memory), MaxConcurrency: int32(*concurrency)}
	}
	if len(env) > 0 {
		spec.Environment = env
	}
	c, err := af.clients(ctx)
	if err != nil {
		return err
	}
	if !*noCheck {
		if err := sagemaker.CheckS3Inputs(ctx, c.S3, spec.ModelDataS3); err != nil {
			return fmt.Errorf("%w (--no-check skips this check)", err)
		}
	}
	res, err := sagemaker.Deploy(ctx, c.SageMaker, spec, *wait)
	// On failure Deploy rolls back what it created, except an endpoint that
	// exists (waiting for it failed): only then is the result worth printing.
	return printUnlessFailed(stdout, res, err, res.EndpointARN != "")
}

func smInvoke(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("sagemaker invoke")
	var af smAWSFlags
	af.register(fs)
	endpoint := fs.String("endpoint", "", "endpoint name")
	batch := fs.Int("batch-size", 64, "texts per request")
	texts, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *endpoint == "" {
		return usageError("--endpoint is required")
	}
	if *batch < 1 {
		return usageError("--batch-size must be at least 1")
	}
	if len(texts) == 0 {
		if texts, err = readLines(stdin); err != nil {
			return err
		}
	}
	if len(texts) == 0 {
		return usageError("give texts as arguments or one per line on standard input")
	}
	c, err := af.clients(ctx)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	for start := 0; start < len(texts); start += *batch {
		vecs, err := sagemaker.Invoke(ctx, c.Runtime, *endpoint, texts[start:min(start+*batch, len(texts))])
		if err != nil {
			w.Flush()
			return err
		}
		for _, v := range vecs {
			writeVector(w, v)
		}
	}
	return w.Flush()
}
