package testmodel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Encoder is one encoder family's golden folder under
// testdata/golden/encoders (written by tools/golden/encoders.py):
// sentence-transformers' input ids and vectors for the texts, and its
// first-step MultipleNegativesRankingLoss.
type Encoder struct {
	Family         string      `json:"family"`
	MaxSeqLength   int         `json:"max_seq_length"`
	Dim            int         `json:"dim"`
	Texts          []string    `json:"texts"`
	InputIDs       [][]int64   `json:"input_ids"`
	Encode         [][]float64 `json:"encode"`
	EncodeQuery    [][]float64 `json:"encode_query"`
	EncodeDocument [][]float64 `json:"encode_document"`
	Loss           struct {
		Anchors   []string `json:"anchors"`
		Positives []string `json:"positives"`
		Scale     float64  `json:"scale"`
		Loss      float64  `json:"loss"`
		GradNorm  float64  `json:"grad_norm"`
	} `json:"loss"`
}

// EncoderFolder copies a family's golden folder into a fresh temporary
// folder and returns it with its golden values.
func EncoderFolder(t testing.TB, family string) (string, Encoder) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "golden", "encoders", family)
	dir := t.TempDir()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Name() == "golden.json" {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return copyTo(path, filepath.Join(dir, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	var g Encoder
	b, err := os.ReadFile(filepath.Join(src, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return dir, g
}
