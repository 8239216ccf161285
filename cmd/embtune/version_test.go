package main

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, stderr := runCLI(ctx, args, "")
		require.Equal(t, 0, code, stderr)
		require.True(t, strings.HasPrefix(out, "embtune "), out)
		require.Contains(t, out, "libtorch 2.")
		require.Contains(t, out, runtime.Version())
	}
	code, out, stderr := runCLI(ctx, []string{"version", "--json"}, "")
	require.Equal(t, 0, code, stderr)
	var v versionInfo
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.NotEmpty(t, v.Version)
	require.True(t, strings.HasPrefix(v.Libtorch, "2."), v.Libtorch)

	code, _, _ = runCLI(ctx, []string{"version", "extra"}, "")
	require.Equal(t, 2, code)
}
