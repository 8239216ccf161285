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
	ModelType      string      `json:"model_type"`
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

// EncoderFamilies lists the family folders under testdata/golden/encoders.
func EncoderFamilies(t testing.TB) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	entries, err := os.ReadDir(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "golden", "encoders"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no encoder family goldens under testdata/golden/encoders")
	}
	return names
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

// MPNetDir returns the all-mpnet-base-v2 folder that `make mpnet` fetches:
// EMBTUNE_MPNET if set, else third_party/models/all-mpnet-base-v2. It fails
// the test when the weights are missing.
func MPNetDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EMBTUNE_MPNET")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", "all-mpnet-base-v2")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(abs, "model.safetensors")); err != nil {
		t.Fatalf("all-mpnet-base-v2 missing (run `make mpnet`): %v", err)
	}
	return abs
}

// Real is a real model's golden file under testdata/golden/encoders
// (tools/golden/encoders.py real): sentence-transformers' input ids and
// encode vectors for the texts.
type Real struct {
	Model        string      `json:"model"`
	MaxSeqLength int         `json:"max_seq_length"`
	Dim          int         `json:"dim"`
	Texts        []string    `json:"texts"`
	InputIDs     [][]int64   `json:"input_ids"`
	Encode       [][]float64 `json:"encode"`
}

// ReadReal reads testdata/golden/encoders/NAME.json.
func ReadReal(t testing.TB, name string) Real {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "golden", "encoders", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g Real
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}
