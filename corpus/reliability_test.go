package corpus

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The probe's index: embeddings [1, 2^62] F32 need 2^64 bytes, which wrapped
// to 0, so the index loaded, /ping said 200 and every /search was a 500.
func TestLoadRefusesOverflowingEmbeddingShape(t *testing.T) {
	chunks := []byte(`[{"id":"d#0","doc":"d","start":0,"end":1,"text":"x"}]`)
	header := fmt.Sprintf(`{"__metadata__":{"embtune_index":"{\"format\":\"%s\",\"dim\":4611686018427387904}"},`+
		`"chunks":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]},`+
		`"embeddings":{"dtype":"F32","shape":[1,4611686018427387904],"data_offsets":[%d,%d]}}`,
		Format, len(chunks), len(chunks), len(chunks), len(chunks))
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(append(b, header...), chunks...)
	path := filepath.Join(t.TempDir(), "x.index")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	x, err := Load(path)
	require.Error(t, err)
	assert.Nil(t, x)
	assert.Contains(t, err.Error(), "overflows")
}
