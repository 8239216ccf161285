package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/vecmath"
)

// docBlock is one fenced Python block of a docs page, named by the heading
// above it.
type docBlock struct {
	name, source string
}

// pythonBlocks returns the ```python blocks of a Markdown file in order.
func pythonBlocks(t testing.TB, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var (
		blocks  []docBlock
		heading string
		in      bool
		cur     strings.Builder
		count   = map[string]int{}
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && strings.HasPrefix(line, "```"):
			in = false
			count[heading]++
			name := heading
			if count[heading] > 1 {
				name += " " + string(rune('0'+count[heading]))
			}
			blocks = append(blocks, docBlock{name, cur.String()})
			cur.Reset()
		case in:
			cur.WriteString(line)
			cur.WriteByte('\n')
		case line == "```python":
			in = true
		case strings.HasPrefix(line, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	require.NoError(t, sc.Err())
	require.False(t, in, "%s: unterminated code block", path)
	return blocks
}

// TestDocsServingSnippets runs every Python block of docs/serving.md, with
// the real clients pinned in tools/clients/requirements.txt, against a real
// server, and checks the vectors each leaves in `embeddings`.
func TestDocsServingSnippets(t *testing.T) {
	py, err := filepath.Abs(filepath.Join("..", "third_party", "clients-venv", "bin", "python"))
	require.NoError(t, err)
	if _, err := os.Stat(py); err != nil {
		msg := "the clients' venv is missing (run `make deps-clients`): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	blocks := pythonBlocks(t, filepath.Join("..", "docs", "serving.md"))
	require.GreaterOrEqual(t, len(blocks), 7, "docs/serving.md lost client snippets")

	ts := startReady(t, Config{})
	u, err := url.Parse(ts.url)
	require.NoError(t, err)
	runner := filepath.Join("..", "tools", "clients", "run_snippet.py")
	for _, b := range blocks {
		t.Run(b.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			out := filepath.Join(t.TempDir(), "out.json")
			cmd := exec.CommandContext(ctx, py, runner, u.Port(), out)
			cmd.Stdin = strings.NewReader(b.source)
			cmd.Env = append(os.Environ(),
				"AWS_ACCESS_KEY_ID=unused", "AWS_SECRET_ACCESS_KEY=unused", "AWS_DEFAULT_REGION=us-east-1",
				"AWS_EC2_METADATA_DISABLED=true", "SAGEMAKER_SUPPRESS_V2_WARNING=1",
				"HF_HUB_DISABLE_TELEMETRY=1", "NO_PROXY=*", "no_proxy=*")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Run(), "block:\n%s\nstderr:\n%s", b.source, stderr.String())
			var got struct {
				Texts      []string    `json:"texts"`
				Embeddings [][]float32 `json:"embeddings"`
			}
			b, err := os.ReadFile(out)
			require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			require.NoError(t, json.Unmarshal(b, &got))
			require.NotEmpty(t, got.Texts)
			require.Len(t, got.Embeddings, len(got.Texts))
			want := encodeDirect(t, got.Texts).Vectors
			for i := range want {
				c := vecmath.Cosine(want[i], got.Embeddings[i])
				require.GreaterOrEqual(t, c, 0.99999, "text %d (%q): cosine %.7f to the model's own", i, got.Texts[i], c)
			}
		})
	}
}
