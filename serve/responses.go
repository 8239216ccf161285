package serve

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"strconv"
)

// writeJSON sends a JSON body with its length.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do
}

// appendMatrix writes vectors as a JSON array of arrays with the shortest
// decimal form that reads back to the same float32.
func appendMatrix(buf []byte, vecs [][]float32) ([]byte, error) {
	buf = append(buf, '[')
	for i, v := range vecs {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendVector(buf, v); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

var errNonFinite = errors.New("the model produced a non-finite value")

func appendVector(buf []byte, v []float32) ([]byte, error) {
	buf = append(buf, '[')
	for i, x := range v {
		if i > 0 {
			buf = append(buf, ',')
		}
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errNonFinite // JSON has no NaN; fail rather than send invalid JSON
		}
		buf = strconv.AppendFloat(buf, f, 'g', -1, 32)
	}
	return append(buf, ']'), nil
}

// appendBase64 writes v as base64 of little-endian float32s, OpenAI's
// encoding_format "base64".
func appendBase64(buf []byte, v []float32) []byte {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.AppendEncode(buf, raw)
}
