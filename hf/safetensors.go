package hf

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/embtune/embtune/atomicfile"
)

// The safetensors format: an 8-byte little-endian header length N, N bytes
// of JSON mapping tensor names to {dtype, shape, data_offsets}, then the
// tensor bytes. Offsets are relative to the end of the header.

// maxHeaderBytes bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes (the reference implementation uses the same 100 MB cap).
const maxHeaderBytes = 100 << 20

// ErrSafetensors marks a file that is not valid safetensors.
var ErrSafetensors = errors.New("invalid safetensors file")

// DType is a safetensors element type, by its name in the header.
type DType string

// The safetensors dtypes embtune reads and writes.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

var dtypeSizes = map[DType]int{F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, Bool: 1}

// Size is the bytes of one element; 0 for a dtype embtune does not know.
func (d DType) Size() int { return dtypeSizes[d] }

// Known reports whether d is one of the dtypes above.
func (d DType) Known() bool { return d.Size() > 0 }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 || d == F64 }

func (d DType) String() string { return string(d) }

// RawTensor is one tensor's bytes as stored: little-endian elements.
type RawTensor struct {
	DType DType
	Shape []int64
	Data  []byte
}

type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ReadSafetensors reads and validates every tensor of a safetensors file.
// Truncated files, overlapping or out-of-range offsets, unknown dtypes and
// sizes that do not match shapes are all errors wrapping ErrSafetensors.
func ReadSafetensors(path string) (map[string]RawTensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read weights: %w", err)
	}
	return parseSafetensors(f, st.Size(), path)
}

func parseSafetensors(r io.ReaderAt, size int64, name string) (map[string]RawTensor, map[string]string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", name, ErrSafetensors, fmt.Sprintf(format, args...))
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, bad("file has %d bytes, too short for a header", size)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeaderBytes || int64(n) > size-8 {
		return nil, nil, bad("header length %d does not fit in a %d-byte file (truncated?)", n, size)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, nil, bad("reading header: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, nil, bad("header is not a JSON object: %v", err)
	}
	dataStart := 8 + int64(n)
	dataLen := size - dataStart
	var meta map[string]string
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	entries := map[string]stEntry{}
	for k, v := range raw {
		if k == "__metadata__" {
			if err := json.Unmarshal(v, &meta); err != nil {
				return nil, nil, bad("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, nil, bad("tensor %q: %v", k, err)
		}
		dt := DType(e.DType)
		if !dt.Known() {
			return nil, nil, bad("tensor %q has unsupported dtype %q", k, e.DType)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0] {
			return nil, nil, bad("tensor %q has bad data_offsets %v", k, e.DataOffsets)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && count > math.MaxInt64/d) {
				return nil, nil, bad("tensor %q has bad shape %v", k, e.Shape)
			}
			count *= d
		}
		// The byte count overflows too: [2^62] F32 needs 2^64 bytes, which
		// would wrap to 0 and accept a tensor with no data.
		if count > math.MaxInt64/int64(dt.Size()) {
			return nil, nil, bad("tensor %q: shape %v of %s overflows the size of a file", k, e.Shape, e.DType)
		}
		if want := count * int64(dt.Size()); e.DataOffsets[1]-e.DataOffsets[0] != want {
			return nil, nil, bad("tensor %q: shape %v of %s needs %d bytes, offsets give %d",
				k, e.Shape, e.DType, want, e.DataOffsets[1]-e.DataOffsets[0])
		}
		if e.DataOffsets[1] > dataLen {
			return nil, nil, bad("tensor %q ends at byte %d but the data section has %d bytes (truncated?)",
				k, e.DataOffsets[1], dataLen)
		}
		entries[k] = e
		spans = append(spans, span{k, e.DataOffsets[0], e.DataOffsets[1]})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, nil, bad("tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	out := make(map[string]RawTensor, len(entries))
	for k, e := range entries {
		buf := make([]byte, e.DataOffsets[1]-e.DataOffsets[0])
		if _, err := r.ReadAt(buf, dataStart+e.DataOffsets[0]); err != nil {
			return nil, nil, bad("reading tensor %q: %v", k, err)
		}
		out[k] = RawTensor{DType: DType(e.DType), Shape: e.Shape, Data: buf}
	}
	return out, meta, nil
}

// WriteSafetensors writes tensors to path atomically (a temporary file in the
// same folder, synced, then renamed), in sorted name order with 8-byte
// aligned offsets.
func WriteSafetensors(path string, tensors map[string]RawTensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var offset int64
	for _, k := range names {
		t := tensors[k]
		if !t.DType.Known() {
			return fmt.Errorf("write %s: tensor %q has unsupported dtype %q", path, k, t.DType)
		}
		header[k] = stEntry{DType: string(t.DType), Shape: t.Shape, DataOffsets: []int64{offset, offset + int64(len(t.Data))}}
		offset += int64(len(t.Data))
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hb)))
		if _, err := w.Write(lenBuf[:]); err != nil {
			return err
		}
		if _, err := w.Write(hb); err != nil {
			return err
		}
		for _, k := range names {
			if _, err := w.Write(tensors[k].Data); err != nil {
				return err
			}
		}
		return nil
	})
}
