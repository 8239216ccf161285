package hf

import (
	"bytes"
	"encoding/binary"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func safetensorsBytes(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header))) //nolint:errcheck
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestSafetensorsRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	in := map[string]RawTensor{
		"a.weight": {DType: F32, Shape: []int64{2, 2}, Data: make([]byte, 16)},
		"b":        {DType: I64, Shape: []int64{1, 3}, Data: bytes.Repeat([]byte{1}, 24)},
		"scalar":   {DType: BF16, Shape: []int64{}, Data: []byte{1, 2}},
	}
	require.NoError(t, WriteSafetensors(p, in, map[string]string{"format": "pt"}))
	out, meta, err := ReadSafetensors(p)
	require.NoError(t, err)
	assert.Equal(t, in, out)
	assert.Equal(t, "pt", meta["format"])
}

func TestSafetensorsRejectsBadFiles(t *testing.T) {
	cases := map[string][]byte{
		"empty":             {},
		"short length":      {1, 2, 3},
		"huge header":       safetensorsBytes("", nil)[:0:0],
		"header past end":   append(binary.LittleEndian.AppendUint64(nil, 1000), []byte("{}")...),
		"not json":          safetensorsBytes("{nope", nil),
		"array header":      safetensorsBytes("[1,2]", nil),
		"unknown dtype":     safetensorsBytes(`{"x":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, []byte{0}),
		"size mismatch":     safetensorsBytes(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)),
		"data truncated":    safetensorsBytes(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)),
		"negative shape":    safetensorsBytes(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)),
		"reversed offsets":  safetensorsBytes(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)),
		"overlap":           safetensorsBytes(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, make([]byte, 8)),
		"bad metadata":      safetensorsBytes(`{"__metadata__":{"a":1}}`, nil),
		"overflowing shape": safetensorsBytes(`{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, make([]byte, 4)),
	}
	cases["huge header"] = binary.LittleEndian.AppendUint64(nil, 1<<40)
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := parseSafetensors(bytes.NewReader(b), int64(len(b)), "test.safetensors")
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrSafetensors)
		})
	}
}

func FuzzSafetensors(f *testing.F) {
	f.Add(safetensorsBytes(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(safetensorsBytes(`{"__metadata__":{"format":"pt"}}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := parseSafetensors(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			return
		}
		// Checked in arbitrary precision, independently of the reader's
		// int64 arithmetic (which once wrapped [2^62] F32 to 0 bytes).
		for name, x := range ts {
			n := big.NewInt(int64(x.DType.Size()))
			for _, d := range x.Shape {
				n.Mul(n, big.NewInt(d))
			}
			if n.Cmp(big.NewInt(int64(len(x.Data)))) != 0 {
				t.Fatalf("%s: %d bytes for shape %v", name, len(x.Data), x.Shape)
			}
		}
	})
}
