package main

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/sagemaker"
)

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMetricDefinitionsReadRealLogLines runs the training container (2
// folds; then a held-out split) with main's log handler and requires every
// CloudWatch metric definition to find a number in the lines it really
// prints: the regexes and the log format cannot drift apart unnoticed.
func TestMetricDefinitionsReadRealLogLines(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	var logs syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(sagemaker.LogHandler(&logs)))
	defer slog.SetDefault(prev)
	// Folds log per-fold lines; a held-out split logs the base and tuned
	// models' metrics: run both.
	for _, eval := range [][2]string{{"folds", "2"}, {"eval-split", "0.25"}} {
		base := sagemakerTree(t, map[string]string{
			"model": `"` + modelDir(t) + `"`, "epochs": "1", "batch-size": "4", "max-seq-length": "32", eval[0]: eval[1],
		}, []string{"algo-1"})
		t.Setenv("SAGEMAKER_BASE_DIR", base)
		code, _, stderr := runCLI(context.Background(), []string{"train"}, "")
		require.Equal(t, 0, code, stderr)
	}

	lines := strings.Split(logs.String(), "\n")
	for _, m := range sagemaker.TrainingMetricDefinitions {
		re := regexp.MustCompile(m.Regex)
		found := 0
		for _, line := range lines {
			if sub := re.FindStringSubmatch(line); sub != nil {
				_, err := strconv.ParseFloat(sub[1], 64)
				assert.NoError(t, err, "%s read %q from %q", m.Name, sub[1], line)
				found++
			}
		}
		assert.Positive(t, found, "%s matched no log line; the lines were:\n%s", m.Name, logs.String())
		// Each family reads its own lines: eval: never a validation line.
		if strings.HasPrefix(m.Name, "eval:") {
			for _, line := range lines {
				if strings.Contains(line, "msg=validation") {
					assert.Nil(t, re.FindStringSubmatch(line), "%s read a validation line: %q", m.Name, line)
				}
			}
		}
	}
}
