package synth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Converser is the one call of the Bedrock runtime client Bedrock uses.
type Converser interface {
	Converse(ctx context.Context, in *bedrockruntime.ConverseInput, opts ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error)
}

// Bedrock asks a model through Amazon Bedrock's Converse API. It asks for
// JSON-schema output (Converse's outputConfig.textFormat) first; a model
// that refuses it (ValidationException) is asked with the prompt's JSON
// instructions alone from then on.
type Bedrock struct {
	Client      Converser
	ModelID     string
	Temperature float32
	MaxTokens   int32

	plain atomic.Bool
}

// NewBedrock makes a Bedrock backend from an SDK configuration; endpointURL,
// when set, replaces the service's endpoint (BaseEndpoint), as --endpoint-url
// does for embtune sagemaker.
func NewBedrock(cfg aws.Config, endpointURL, modelID string) *Bedrock {
	c := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		if endpointURL != "" {
			o.BaseEndpoint = aws.String(endpointURL)
		}
	})
	return &Bedrock{Client: c, ModelID: modelID, Temperature: 0.7, MaxTokens: 512}
}

// Model implements LLM.
func (b *Bedrock) Model() string { return b.ModelID }

// Chat implements LLM.
func (b *Bedrock) Chat(ctx context.Context, r Request) (Reply, error) {
	for {
		plain := b.plain.Load()
		rep, err := b.converse(ctx, r, !plain)
		var ae smithy.APIError
		if err != nil && !plain && errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" {
			b.plain.Store(true)
			continue
		}
		return rep, err
	}
}

func (b *Bedrock) converse(ctx context.Context, r Request, schema bool) (Reply, error) {
	in := &bedrockruntime.ConverseInput{
		ModelId: aws.String(b.ModelID),
		Messages: []types.Message{{
			Role:    types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: r.User}},
		}},
		InferenceConfig: &types.InferenceConfiguration{Temperature: aws.Float32(b.Temperature)},
	}
	if r.System != "" {
		in.System = []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: r.System}}
	}
	if b.MaxTokens > 0 {
		in.InferenceConfig.MaxTokens = aws.Int32(b.MaxTokens)
	}
	if schema {
		s, err := json.Marshal(QuestionsSchema(r.N))
		if err != nil {
			return Reply{}, err
		}
		in.OutputConfig = &types.OutputConfig{TextFormat: &types.OutputFormat{
			Type: types.OutputFormatTypeJsonSchema,
			Structure: &types.OutputFormatStructureMemberJsonSchema{Value: types.JsonSchemaDefinition{
				Name: aws.String("questions"), Schema: aws.String(string(s)),
			}},
		}}
	}
	out, err := b.Client.Converse(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return Reply{}, ctx.Err()
		}
		return Reply{}, classifyAWS(fmt.Errorf("bedrock: %w", err))
	}
	rep := Reply{Model: b.ModelID}
	if u := out.Usage; u != nil {
		rep.InputTokens = int(aws.ToInt32(u.InputTokens))
		rep.OutputTokens = int(aws.ToInt32(u.OutputTokens))
	}
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return rep, malformed("the Converse response has no message")
	}
	var text []string
	for _, c := range msg.Value.Content {
		if t, ok := c.(*types.ContentBlockMemberText); ok {
			text = append(text, t.Value)
		}
	}
	if len(text) == 0 {
		return rep, malformed("the Converse message has no text")
	}
	rep.Text = strings.Join(text, "")
	return rep, nil
}

// retryableAWS are Bedrock's error codes worth another try.
var retryableAWS = map[string]bool{
	"ThrottlingException": true, "ServiceUnavailableException": true, "InternalServerException": true,
	"ModelNotReadyException": true, "ModelTimeoutException": true, "TooManyRequestsException": true,
}

// classifyAWS marks throttling, 429, 5xx and failed connections retryable.
func classifyAWS(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && retryableAWS[ae.ErrorCode()] {
		return &RetryableError{Err: err}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() == 429 || re.HTTPStatusCode() >= 500) {
		return &RetryableError{Err: err}
	}
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) {
		return &RetryableError{Err: err}
	}
	return err
}
