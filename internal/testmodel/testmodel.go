// Package testmodel locates the all-MiniLM-L6-v2 folder that `make deps`
// fetches, for tests and benchmarks in any package.
package testmodel

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the absolute model folder: EMBTUNE_MODEL if set, else
// third_party/models/all-MiniLM-L6-v2 at the repository root. It fails the
// test when the weights are missing.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EMBTUNE_MODEL")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", "all-MiniLM-L6-v2")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(abs, "model.safetensors")); err != nil {
		t.Fatalf("model folder missing (run `make deps`): %v", err)
	}
	return abs
}
