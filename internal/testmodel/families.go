package testmodel

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
)

// Family is one head variant under testdata/golden/families (written by
// tools/golden/families.py): sentence-transformers' vectors for its texts.
type Family struct {
	Variant           string            `json:"variant"`
	MaxSeqLength      int               `json:"max_seq_length"`
	Dim               int               `json:"dim"`
	Prompts           map[string]string `json:"prompts"`
	DefaultPromptName *string           `json:"default_prompt_name"`
	Texts             []string          `json:"texts"`
	Encode            [][]float64       `json:"encode"`
	EncodeQuery       [][]float64       `json:"encode_query"`
	EncodeDocument    [][]float64       `json:"encode_document"`
}

// FamiliesDir is testdata/golden/families at the repository root.
func FamiliesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "golden", "families")
}

// FamilyVariants lists the stored variants, sorted.
func FamilyVariants(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(FamiliesDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "base" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// AssembleFamily copies the shared transformer (base/) and a variant's own
// files into a fresh temporary folder, a complete sentence-transformers
// folder, and returns it with the variant's golden vectors.
func AssembleFamily(t testing.TB, variant string) (string, Family) {
	t.Helper()
	dir := t.TempDir()
	root := FamiliesDir()
	for _, src := range []string{filepath.Join(root, "base"), filepath.Join(root, variant)} {
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
	}
	var g Family
	b, err := os.ReadFile(filepath.Join(root, variant, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return dir, g
}

func copyTo(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
