package sagemaker

// Training jobs: the job request for embtune's training image, its
// CloudWatch metric definitions, creating, waiting and describing.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// MetricRegex is one of SageMaker's MetricDefinitions: the first capture
// group of Regex, matched against the training job's log lines, becomes a
// CloudWatch metric named Name.
type MetricRegex struct {
	Name  string
	Regex string
}

// LogHandler is the log format of every embtune command: slog's text
// format at level Info, which TrainingMetricDefinitions read. main uses it,
// and TestMetricDefinitionsReadRealLogLines runs a real training through it,
// so a change of format cannot silently blind the CloudWatch metrics.
func LogHandler(w io.Writer) slog.Handler {
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
}

// TrainingMetricDefinitions scrape the log lines `embtune train` prints
// (LogHandler's format) in the training container:
//
//	msg=step step=12 epoch=2.00 loss=0.103313 lr=3.981e-05 grad_norm=5.6125 pairs_per_sec=7.89
//	msg="base model" ndcg@10=0.7496 mrr@10=0.7012 accuracy@1=0.5417
//	msg="tuned model" ndcg@10=0.7866 mrr@10=0.7400 accuracy@1=0.6250
//	msg=fold fold=1 base_ndcg@10=0.7412 tuned_ndcg@10=0.7866
//	msg=validation step=9 epoch=3.00 ndcg@10=0.8042 best_step=9 best=0.8042
//	msg=comparison metric=ndcg@10 questions=120 gain=0.0170 ci_low=0.0040 ci_high=0.0310 resamples=10000 verdict=better sign=1 summary="…"
//
// eval: metrics read the base and tuned models' lines only; the validation
// split's per-evaluation lines have their own (validation:), so a curve of
// validation scores never mixes into the before/after figures. The
// comparison line is the paired gain over every test question, its 95%
// bootstrap interval (read only when the metric of record is ndcg@10) and
// the verdict as a number (1 better, -1 worse, 0 no significant difference
// or too few questions); a fold line's p_value is its Wilcoxon test.
//
// The regexes use only syntax that Go's RE2 and SageMaker's matcher read
// alike (no look-around, no named groups).
var TrainingMetricDefinitions = []MetricRegex{
	{"train:loss", `msg=step .*\bloss=([-+0-9.eE]+|NaN)`},
	{"train:lr", `msg=step .*\blr=([-+0-9.eE]+)`},
	{"train:grad_norm", `msg=step .*\bgrad_norm=([-+0-9.eE]+|NaN|[+-]Inf)`},
	{"train:epoch", `msg=step .*\bepoch=([0-9.]+)`},
	{"train:pairs_per_sec", `msg=step .*\bpairs_per_sec=([0-9.eE+-]+)`},
	{"eval:ndcg@10", `msg="(?:base|tuned) model" .*\bndcg@10=([0-9.eE+-]+)`},
	{"eval:base_ndcg@10", `msg="base model" .*\bndcg@10=([0-9.eE+-]+)`},
	{"eval:tuned_ndcg@10", `msg="tuned model" .*\bndcg@10=([0-9.eE+-]+)`},
	{"eval:tuned_mrr@10", `msg="tuned model" .*\bmrr@10=([0-9.eE+-]+)`},
	{"eval:tuned_accuracy@1", `msg="tuned model" .*\baccuracy@1=([0-9.eE+-]+)`},
	{"eval:fold_tuned_ndcg@10", `msg=fold .*\btuned_ndcg@10=([0-9.eE+-]+)`},
	{"eval:fold_p_value", `msg=fold .*\bp_value=([0-9.eE+-]+)`},
	{"eval:ndcg@10_gain", `msg=comparison metric=ndcg@10 .*\bgain=([-+0-9.eE]+)`},
	{"eval:ndcg@10_ci_low", `msg=comparison metric=ndcg@10 .*\bci_low=([-+0-9.eE]+)`},
	{"eval:ndcg@10_ci_high", `msg=comparison metric=ndcg@10 .*\bci_high=([-+0-9.eE]+)`},
	{"eval:verdict", `msg=comparison .*\bsign=(-?[0-9]+)`},
	{"validation:ndcg@10", `msg=validation .*\bndcg@10=([0-9.eE+-]+)`},
	{"validation:best", `msg=validation .*\bbest=([0-9.eE+-]+)`},
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
var TrainingCheckpointPath = Layout{Base: DefaultBase}.CheckpointDir()

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
	return afterWait(ctx, "training job", name, werr,
		func(ctx context.Context) (TrainingJobResult, error) { return DescribeTrainingJob(ctx, client, name) },
		trainingState)
}

func trainingState(r TrainingJobResult) (status, reason string) { return r.Status, r.FailureReason }

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
