package doclinks

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRepositoryLinks fails on a relative link in README.md or docs/*.md to
// a file that does not exist, or to a heading that is not there.
func TestRepositoryLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/*.md found")
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	bad, err := Check(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Serving embeddings":                                 "serving-embeddings",
		"Fast CPU inference: `--quantize int8`":              "fast-cpu-inference---quantize-int8",
		"How to run on 2 GPUs":                               "how-to-run-on-2-gpus",
		"The SageMaker Python SDK, locally":                  "the-sagemaker-python-sdk-locally",
		"Query it in SQL ([pgvector](https://x.y/z))":        "query-it-in-sql-pgvector",
		"Model families: pooling, Dense, Normalize, prompts": "model-families-pooling-dense-normalize-prompts",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("b.md", "# Title\n\n## Two words\n\n## Two words\n")
	a := write("a.md", "[ok](b.md) [ok](b.md#two-words) [ok](b.md#two-words-1) [ok](#here)\n"+
		"# Here\n[bad](c.md) [bad](b.md#nope) `[code](x.md)` [web](https://example.com/x.md)\n"+
		"```\n[in a block](y.md)\n```\n[ref]: missing.md\n")
	bad, err := Check([]string{a})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 3 {
		t.Fatalf("want 3 broken links (c.md, b.md#nope, missing.md), got %d: %q", len(bad), bad)
	}
}

// TestMakeTargetsInLayout holds the Makefile's header and docs/layout.md to
// the same targets: every `make X` the header lists is in the page's table,
// and every target the table names is a rule of the Makefile.
func TestMakeTargetsInLayout(t *testing.T) {
	root := filepath.Join("..", "..")
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(root, "docs", "layout.md"))
	if err != nil {
		t.Fatal(err)
	}
	header := MakeHeaderTargets(string(mk))
	if len(header) < 10 {
		t.Fatalf("the Makefile's header lists %d targets; is it still there?", len(header))
	}
	listed := LayoutTargets(string(page))
	for _, target := range header {
		if !listed[target] {
			t.Errorf("the Makefile's header lists make %s, docs/layout.md's table does not", target)
		}
	}
	rules := MakeRules(string(mk))
	for target := range listed {
		if !rules[target] {
			t.Errorf("docs/layout.md lists make %s, which the Makefile has no rule for", target)
		}
	}
}
