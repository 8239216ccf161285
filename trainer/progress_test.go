package trainer

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProgressBarNotOnDevNull checks that /dev/null, a character device
// but no terminal, gets no progress bar (it used to pass ModeCharDevice).
func TestProgressBarNotOnDevNull(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	require.NotZero(t, st.Mode()&os.ModeCharDevice, "/dev/null should be a character device")
	assert.False(t, isTerminal(f))
	assert.Nil(t, newProgressBar(f, 10).w)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, isTerminal(w))
}
