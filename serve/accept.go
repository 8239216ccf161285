package serve

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/embtune/embtune/hf"
)

// The answers /invocations can give, chosen by the request's Accept header
// as SageMaker's containers do (the SDK's deserializers send it).
type answerFormat int

const (
	answerJSON      answerFormat = iota // {"embeddings": [[...], ...]}
	answerJSONLines                     // one JSON array per line
	answerCSV                           // one row of numbers per input
	answerNPY                           // a NumPy .npy float32 array (n, dim)
)

// Media types of the answers besides JSON and JSON Lines.
const (
	CSVType = "text/csv"
	NPYType = "application/x-npy"
)

// acceptedFormat picks the answer format from an Accept header: its media
// ranges in order of q (then of appearance), the first one served wins.
// No header, */* and application/* mean JSON. Nothing served is 406.
func acceptedFormat(accept string) (answerFormat, error) {
	if strings.TrimSpace(accept) == "" {
		return answerJSON, nil
	}
	type choice struct {
		mt string
		q  float64
	}
	var choices []choice
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q <= 0 {
			continue
		}
		// A stable insertion keeps equal q in the header's order.
		i := len(choices)
		for i > 0 && choices[i-1].q < q {
			i--
		}
		choices = append(choices, choice{})
		copy(choices[i+1:], choices[i:])
		choices[i] = choice{mt, q}
	}
	for _, c := range choices {
		switch {
		case c.mt == "*/*" || c.mt == "application/*" || c.mt == "application/json" || strings.HasSuffix(c.mt, "+json"):
			return answerJSON, nil
		case isJSONLines(c.mt):
			return answerJSONLines, nil
		case c.mt == CSVType || c.mt == "text/*":
			return answerCSV, nil
		case c.mt == NPYType:
			return answerNPY, nil
		}
	}
	return 0, errorf(KindNotAcceptable,
		"Accept %q: /invocations answers application/json, application/jsonlines, text/csv or application/x-npy", accept)
}

// isCSV tells whether a Content-Type is CSV (the SageMaker SDK's
// CSVSerializer sends text/csv).
func isCSV(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == CSVType
}

// decodeCSVInvocations reads a text/csv /invocations body with
// /invocations' defaults (decodeInvocations): truncated, normalised.
func decodeCSVInvocations(body []byte, maxInputs int) (embedInput, error) {
	in := embedInput{Route: "invocations", Role: hf.RoleDefault, Truncate: true, Normalize: true}
	var err error
	in.Texts, err = decodeCSVInputs(body, maxInputs)
	return in, err
}

// decodeCSVInputs reads one text per CSV record, as the SageMaker SDK's
// CSVSerializer writes a list of strings (one per line, quoted where
// needed). A record of more than one field is refused: which field is the
// text would be a guess.
func decodeCSVInputs(body []byte, maxInputs int) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	var texts []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badRequest("malformed CSV: %v", err)
		}
		if len(rec) != 1 {
			line, _ := r.FieldPos(0)
			return nil, badRequest("CSV line %d has %d fields; send one text per line (quote a text that holds commas)", line, len(rec))
		}
		if len(texts) == maxInputs {
			return nil, errorf(KindTooLarge, "the CSV body has more than %d inputs; split the request", maxInputs)
		}
		texts = append(texts, rec[0])
	}
	if len(texts) == 0 {
		return nil, badRequest("request body is empty; send one text per CSV line")
	}
	return texts, nil
}

// writeAnswer writes vectors in the chosen format.
func writeAnswer(w http.ResponseWriter, format answerFormat, vecs [][]float32, dim int) error {
	var (
		buf []byte
		ct  string
		err error
	)
	switch format {
	case answerJSON:
		buf = make([]byte, 0, 16+len(vecs)*dim*12)
		buf = append(buf, `{"embeddings":`...)
		if buf, err = appendMatrix(buf, vecs); err != nil {
			return errorf(KindInternal, "%w", err)
		}
		buf = append(buf, '}')
		writeJSON(w, http.StatusOK, buf)
		return nil
	case answerJSONLines:
		ct = JSONLinesType
		buf = make([]byte, 0, len(vecs)*(dim*12+1))
		for _, v := range vecs {
			if buf, err = appendVector(buf, v); err != nil {
				return errorf(KindInternal, "%w", err)
			}
			buf = append(buf, '\n')
		}
	case answerCSV:
		ct = CSVType
		buf = make([]byte, 0, len(vecs)*(dim*12+1))
		for _, v := range vecs {
			for i, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return errorf(KindInternal, "non-finite embedding value")
				}
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendFloat(buf, float64(x), 'g', -1, 32)
			}
			buf = append(buf, '\n')
		}
	case answerNPY:
		ct = NPYType
		buf = appendNPY(nil, vecs, dim)
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(http.StatusOK)
	w.Write(buf) //nolint:errcheck // the client may be gone
	return nil
}

// appendNPY writes a NumPy format 1.0 file: the magic, a header padded
// with spaces so that the data starts at a multiple of 64 bytes, then
// little-endian float32 rows (numpy.load reads it as shape (n, dim)).
func appendNPY(buf []byte, vecs [][]float32, dim int) []byte {
	header := "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
		strconv.Itoa(len(vecs)) + ", " + strconv.Itoa(dim) + "), }"
	const pre = 10 // magic (6), version (2), header length (2)
	pad := 64 - (pre+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	header += strings.Repeat(" ", pad) + "\n"
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	for _, v := range vecs {
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
	}
	return buf
}
