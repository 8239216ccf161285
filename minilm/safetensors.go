package minilm

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
	"github.com/embtune/embtune/torch"
)

// The safetensors format: an 8-byte little-endian header length N, N bytes
// of JSON mapping tensor names to {dtype, shape, data_offsets}, then the
// tensor bytes. Offsets are relative to the end of the header.

// maxHeaderBytes bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes (the reference implementation uses the same 100 MB cap).
const maxHeaderBytes = 100 << 20

// ErrSafetensors marks a file that is not valid safetensors.
var ErrSafetensors = errors.New("invalid safetensors file")

// RawTensor is one tensor's bytes as stored: little-endian elements.
type RawTensor struct {
	DType torch.DType
	Shape []int64
	Data  []byte
}

var safetensorsDTypes = map[string]torch.DType{
	"F32": torch.Float32, "F16": torch.Float16, "BF16": torch.BFloat16, "F64": torch.Float64,
	"I64": torch.Int64, "I32": torch.Int32, "I16": torch.Int16, "I8": torch.Int8,
	"U8": torch.Uint8, "BOOL": torch.Bool,
}

func safetensorsName(d torch.DType) (string, bool) {
	for k, v := range safetensorsDTypes {
		if v == d {
			return k, true
		}
	}
	return "", false
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
		dt, ok := safetensorsDTypes[e.DType]
		if !ok {
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
		out[k] = RawTensor{DType: safetensorsDTypes[e.DType], Shape: e.Shape, Data: buf}
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
		dt, ok := safetensorsName(t.DType)
		if !ok {
			return fmt.Errorf("write %s: tensor %q has unsupported dtype %s", path, k, t.DType)
		}
		header[k] = stEntry{DType: dt, Shape: t.Shape, DataOffsets: []int64{offset, offset + int64(len(t.Data))}}
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
