package hf

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSafetensorsByteCountOverflow(t *testing.T) {
	// [2^62] F32 needs 2^64 bytes, which wraps to 0 in int64.
	b := safetensorsBytes(`{"x":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]},`+
		`"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4))
	_, _, err := parseSafetensors(bytes.NewReader(b), int64(len(b)), "t")
	require.ErrorIs(t, err, ErrSafetensors)
	assert.Contains(t, err.Error(), "overflows")
	b = safetensorsBytes(`{"x":{"dtype":"F64","shape":[2,1152921504606846976],"data_offsets":[0,0]}}`, nil)
	_, _, err = parseSafetensors(bytes.NewReader(b), int64(len(b)), "t")
	require.ErrorIs(t, err, ErrSafetensors)
}
