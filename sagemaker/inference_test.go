//go:build cgo

package sagemaker

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/minilm"
)

// TestInferenceScriptWithPeers runs code/inference.py from a packaged
// all-MiniLM-L6-v2 (the model.pt embtune's own TorchScript export writes, and
// the Hugging Face folder) in Python with torch and tokenizers, as the AWS
// containers call it, and compares with sentence-transformers' embeddings of
// the golden corpus (testdata/golden). The Python is
// third_party/inference-venv (tools/fetch-inference-venv.sh, run by make
// deps); without it the test fails, unless EMBTUNE_SKIP_AWS=1 skips it.
func TestInferenceScriptWithPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("loads torch in Python")
	}
	root := embtuneRoot(t)
	py := filepath.Join(root, "third_party", "inference-venv", "bin", "python")
	if _, err := os.Stat(filepath.Join(root, "third_party", "inference-venv", ".embtune-version")); err != nil {
		if os.Getenv("EMBTUNE_SKIP_AWS") == "1" {
			t.Skip("the inference script's Python (third_party/inference-venv) is missing; skipped because EMBTUNE_SKIP_AWS=1")
		}
		t.Fatalf("the inference script's Python is missing (third_party/inference-venv): run `make deps` (tools/fetch-inference-venv.sh), or set EMBTUNE_SKIP_AWS=1 to skip the AWS tests")
	}
	modelDir := filepath.Join(root, "third_party", "models", "all-MiniLM-L6-v2")
	_, err := os.Stat(filepath.Join(modelDir, "model.safetensors"))
	require.NoError(t, err, "the model is fetched by make deps")
	texts, ref := goldenSample(t, filepath.Join(root, "testdata", "golden"))

	src := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
		"special_tokens_map.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json"} {
		copyTestFile(t, filepath.Join(modelDir, name), filepath.Join(src, name))
	}
	// model.pt as `embtune export --torchscript` writes it.
	m, err := minilm.Load(context.Background(), modelDir, minilm.Options{Threads: 2})
	require.NoError(t, err)
	err = m.SaveTorchScript(context.Background(), filepath.Join(src, "model.pt"))
	m.Close()
	require.NoError(t, err)
	archive := filepath.Join(t.TempDir(), "model.tar.gz")
	_, err = PackageModel(src, archive, PackageOptions{Fast: true})
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "model")
	require.NoError(t, ExtractModel(archive, out))

	body, err := json.Marshal(map[string]any{"inputs": texts})
	require.NoError(t, err)
	script := `
import json, sys
model_dir = sys.argv[1]
body = sys.stdin.buffer.read()
sys.path.insert(0, model_dir + "/code")
import inference
m = inference.model_fn(model_dir)
resp = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body, "application/json; charset=utf-8"), m), "*/*"))
single = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn('{"inputs": "What is this FAQ?"}', "application/json"), m), "application/json"))
errors = []
for bad, ctype in [('{"inputs": 3}', "application/json"), ('{"inputs": ["a", 1]}', "application/json"), ('{"inputs": "x"}', "text/csv")]:
    try:
        inference.input_fn(bad, ctype)
    except ValueError as e:
        errors.append(str(e))
try:
    inference.output_fn([], "text/csv")
except ValueError as e:
    errors.append(str(e))
print(json.dumps({"resp": resp, "single": single, "errors": errors}))
`
	cmd := exec.Command(py, "-c", script, out)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), "TOKENIZERS_PARALLELISM=false", "OMP_NUM_THREADS=2", "EMBTUNE_BATCH_SIZE=4")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var res struct {
		Resp   struct{ Embeddings [][]float64 }
		Single struct{ Embeddings [][]float64 }
		Errors []string
	}
	require.NoError(t, json.Unmarshal(stdout, &res))
	require.Len(t, res.Resp.Embeddings, len(texts))
	require.Len(t, res.Single.Embeddings, 1)
	assert.Len(t, res.Errors, 4, "bad requests must be refused: %v", res.Errors)
	for i, v := range res.Resp.Embeddings {
		require.Len(t, v, 384)
		var norm, dot float64
		for j := range v {
			norm += v[j] * v[j]
			dot += v[j] * float64(ref[i][j])
		}
		assert.InDelta(t, 1, math.Sqrt(norm), 1e-5, "text %d not normalised", i)
		assert.Greater(t, dot, 0.99999, "text %q differs from sentence-transformers (cosine %f)", texts[i], dot)
	}
	assert.Equal(t, "What is this FAQ?", texts[0])
	assert.InDeltaSlice(t, res.Resp.Embeddings[0], res.Single.Embeddings[0], 1e-5)
}
